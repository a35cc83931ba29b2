#!/bin/sh
# sanoid's [template_backup] (the sample sanoid.conf) with zferry, on the backup host:
#
#   sanoid setting            zferry
#   autosnap = no             no --create-src-snapshots: the snapshots come from the source
#   hourly = 30, daily = 90,  --delete-dst-snapshots-except-plan '{"autosnap": {"": {"hourly": 30,
#   weekly = 4, monthly = 12    "daily": 90, "weekly": 4, "monthly": 12}}}'
#   frequently = 0,           left out of the plan
#   yearly = 0
#   autoprune = yes           --delete-dst-snapshots (after replication, in the same run)
#   syncoid SRC DST           the replication of this run (pull: SRC is [user@]host:pool/dataset)
#   hourly_warn, daily_crit   no zferry spelling yet (no monitor mode)
#
# One run pulls the source's snapshots that the plan keeps (per period the latest N and those
# younger than N periods), plus every snapshot not named autosnap_*, then prunes the backup to
# the same selection. zferry never deletes a backup snapshot that the source still has (by GUID)
# nor the latest one both have in common, so the backup holds at least what the source holds.
# e.g. daily from cron:  5 3 * * * /usr/local/bin/sanoid-template-backup.sh root@prod:tank/data backup/data
set -eu
SRC=${1:?usage: $0 [USER@]HOST:POOL/DATASET BACKUP/DATASET [zferry options, e.g. --dryrun -v]}
DST=${2:?usage: $0 [USER@]HOST:POOL/DATASET BACKUP/DATASET [zferry options]}
shift 2
ZFERRY=${ZFERRY:-zferry}
PLAN='{"autosnap": {"": {"hourly": 30, "daily": 90, "weekly": 4, "monthly": 12}}}'

# the datasets come first: --delete-dst-snapshots takes an optional value
$ZFERRY "$SRC" "$DST" -r --delete-dst-snapshots --delete-dst-snapshots-except-plan "$PLAN" \
  --exclude-snapshot-regex 'autosnap_.*' "$@"
