#!/bin/sh
# sanoid's [template_default] (sanoid.defaults.conf) with zferry, for one dataset tree.
#
#   sanoid setting                      zferry
#   hourly = 48, daily = 90,            --create-src-snapshots-plan '{"autosnap": {"": {"hourly": 48,
#   monthly = 6                           "daily": 90, "monthly": 6}}}'
#   frequently/weekly/yearly = 0        left out of the plan
#   hourly_min = 0                      --hourly_minute 0
#   daily_hour = 23, daily_min = 59     --daily_hour 23 --daily_minute 59
#   weekly_wday = 1 (Monday), 23:30     --weekly_weekday 1 --weekly_hour 23 --weekly_minute 30
#   monthly_mday = 1, 00:00             --monthly_monthday 1 --monthly_hour 0 --monthly_minute 0
#   yearly_mon = 1, yearly_mday = 1     --yearly_month 1 --yearly_monthday 1 --yearly_hour 0 --yearly_minute 0
#   autosnap = 1                        the first zferry call (--create-src-snapshots)
#   autoprune = yes                     the second one (--delete-dst-snapshots-except-plan)
#
# Names are sanoid's own, autosnap_%Y-%m-%d_%H:%M:%S_<period> in local time (a second run of a
# repeated hour ends its timestamp in "dst", as sanoid's does), so zferry takes over the
# snapshots sanoid made. Run it like `sanoid --cron`, e.g. from cron every 15 minutes:
#   */15 * * * * /usr/local/bin/sanoid-template-default.sh tank/data
# More zferry options after the dataset go to both calls (try --dryrun first).
set -eu
DATASET=${1:?usage: $0 POOL/DATASET [zferry options, e.g. --dryrun -v]}
shift
ZFERRY=${ZFERRY:-zferry}
PLAN='{"autosnap": {"": {"hourly": 48, "daily": 90, "monthly": 6}}}'
ANCHORS="--hourly_minute 0 --daily_hour 23 --daily_minute 59 --weekly_weekday 1 --weekly_hour 23 --weekly_minute 30
 --monthly_monthday 1 --monthly_hour 0 --monthly_minute 0 --yearly_month 1 --yearly_monthday 1 --yearly_hour 0
 --yearly_minute 0"

# autosnap: take the due snapshots, one atomic `zfs snapshot` for the whole tree per name (sanoid's recursive = zfs)
# shellcheck disable=SC2086 # ANCHORS is a list of words
$ZFERRY "$DATASET" dummy -r --skip-replication --create-src-snapshots --create-src-snapshots-plan "$PLAN" $ANCHORS "$@"

# autoprune: the same tree, named as the destination of a run without a source ("dummy"). Keep per
# period the latest N and those younger than N periods (as sanoid does); --exclude-snapshot-regex
# keeps every snapshot that sanoid did not name, as sanoid leaves them alone.
$ZFERRY dummy "$DATASET" -r --skip-replication --delete-dst-snapshots \
  --delete-dst-snapshots-except-plan "$PLAN" --exclude-snapshot-regex 'autosnap_.*' "$@"
