"""`zferry-jobrunner`: a fleet of hosts, their targets and plans, turned into zferry sub-jobs run in-process.

- `config`: the jobrunner's own options, parsed and checked (the rest passes through to sub-jobs).
- `subjobs`: pure; the sub-jobs (hierarchical name, zferry argv) a configuration asks for.
- `scheduler`: runs named tasks in parallel, honouring `~` barriers, workers, spreading and jitter.
- `runner`: one sub-job in-process: zferry's own parsing and job building, then the engine.
"""
