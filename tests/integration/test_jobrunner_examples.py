"""The example config scripts (PRD use cases) for real against the sandbox VM, run from this machine.

Each script is loaded as a module and its host names, datasets and timings are pointed at the
sandbox (zfvm-a and zfvm-b are the VM, under two names); the rest of its configuration is as shipped.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.integration.vm import PROJECT, Vm
from zferry.cli import jobrunner


def example(name: str, **settings: object) -> ModuleType:
    """examples/jobrunner_<name>.py as a module, with `settings` replacing its variables."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", PROJECT / "examples" / f"jobrunner_{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for key, value in settings.items():
        assert hasattr(module, key), key
        setattr(module, key, value)
    return module


def run(module: ModuleType, ssh_config: str, *verbs: str) -> int:
    config = ["--ssh-src-config-file", ssh_config, "--ssh-dst-config-file", ssh_config, "--no-log-file"]
    return jobrunner.main([*module.arguments(), *verbs, *config, "--work-period-seconds", "0"])


def snapshots(vm: Vm, dataset: str) -> list[str]:
    return sorted(name.split("@")[1] for name in vm.snapshot_guids(dataset) if name.startswith("@"))


def test_dana_two_replicas(vm_hosts: Vm, roots: tuple[str, str], ssh_config: str) -> None:
    vm, (src, dst) = vm_hosts, roots
    vm.sh(f"zfs create -p {dst}")
    hosts = {"zfvm-a": ["standby"], "zfvm-b": ["standby"]}
    dana = example(
        "dana", root_dataset_pairs=[src, "postgres"], src_hosts=["zfvm-a"], dst_hosts=hosts, retain_dst_targets=hosts,
        dst_root_datasets={"zfvm-a": f"{dst}/replica1", "zfvm-b": f"{dst}/replica2"},
    )  # fmt: skip
    assert run(dana, ssh_config, "--create-src-snapshots", "--replicate") == 0
    taken = snapshots(vm, src)
    assert len(taken) == 2 and {t.rsplit("_", 1)[1] for t in taken} == {"10secondly", "minutely"}
    assert snapshots(vm, f"{dst}/replica1/postgres") == taken == snapshots(vm, f"{dst}/replica2/postgres")
    assert run(dana, ssh_config, "--prune-src-snapshots", "--prune-src-bookmarks", "--prune-dst-snapshots") == 0
    assert snapshots(vm, f"{dst}/replica2/postgres") == taken  # within the plan: nothing to prune
    assert run(dana, ssh_config, "--monitor-src-snapshots", "--monitor-dst-snapshots") == 0


def test_alex_two_sources_two_sites(vm_hosts: Vm, roots: tuple[str, str], ssh_config: str) -> None:
    vm, (src, dst) = vm_hosts, roots
    vm.sh(f"zfs create -p {src}/zfvm-a/home/alice; zfs create -p {src}/zfvm-b/home; zfs create -p {dst}")
    alex = example(
        "alex", root_dataset_pairs=[f"{src}/^SRC_HOST/home", "home"], src_hosts=["zfvm-a", "zfvm-b"],
        dst_hosts={"zfvm-a": ["onsite"], "zfvm-b": ["offsite"]},
        retain_dst_targets={"zfvm-a": ["onsite"], "zfvm-b": ["offsite"]},
        dst_root_datasets={"zfvm-a": f"{dst}/backups/^SRC_HOST", "zfvm-b": f"{dst}/archives/^SRC_HOST"},
    )  # fmt: skip
    assert run(alex, ssh_config, "--create-src-snapshots", "--replicate", "--prune-dst-snapshots") == 0
    for source in ("zfvm-a", "zfvm-b"):
        kinds = {s.split("_")[1] + "_" + s.rsplit("_", 1)[1] for s in snapshots(vm, f"{src}/{source}/home")}
        assert kinds == {"onsite_hourly", "onsite_daily", "onsite_weekly", "offsite_daily", "offsite_weekly"}
        onsite = snapshots(vm, f"{dst}/backups/{source}/home")  # dailies and weeklies of its target only
        assert {s.split("_")[1] + "_" + s.rsplit("_", 1)[1] for s in onsite} == {"onsite_daily", "onsite_weekly"}
        offsite = snapshots(vm, f"{dst}/archives/{source}/home")
        assert {s.split("_")[1] + "_" + s.rsplit("_", 1)[1] for s in offsite} == {"offsite_daily", "offsite_weekly"}
    assert snapshots(vm, f"{dst}/backups/zfvm-a/home/alice") == snapshots(vm, f"{dst}/backups/zfvm-a/home")


def test_sam_usb_pool(vm_hosts: Vm, roots: tuple[str, str], ssh_config: str) -> None:
    vm, (src, dst) = vm_hosts, roots
    vm.sh(f"zfs create -p {src}/media; zfs create -p {src}/documents; zfs create -p {dst}/usb")
    sam = example(
        "sam", root_dataset_pairs=[f"{src}/media", f"/{dst}/usb/media", f"{src}/documents", f"/{dst}/usb/documents"],
        src_hosts=["zfvm-a"], dst_hosts={"zfvm-a": [""]}, retain_dst_targets={"zfvm-a": [""]},
        dst_root_datasets={"zfvm-a": ""},
    )  # fmt: skip
    verbs = ["--create-src-snapshots", "--replicate", "--prune-src-snapshots", "--prune-dst-snapshots"]
    assert run(sam, ssh_config, *verbs, "--monitor-dst-snapshots") == 0
    for name in ("media", "documents"):
        taken = snapshots(vm, f"{src}/{name}")
        assert [t.rsplit("_", 1)[1] for t in taken] == ["daily", "weekly"] and taken[0].startswith("home_2")
        assert snapshots(vm, f"{dst}/usb/{name}") == taken
