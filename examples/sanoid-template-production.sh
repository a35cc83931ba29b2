#!/bin/sh
# sanoid's [template_production] (the sample sanoid.conf) with zferry, for one dataset tree:
#
#   sanoid setting            zferry
#   hourly = 36, daily = 30,  --create-src-snapshots-plan '{"autosnap": {"": {"hourly": 36, "daily": 30,
#   weekly = 4, monthly = 3     "weekly": 4, "monthly": 3}}}'
#   frequently = 0,           left out of the plan
#   yearly = 0
#   autosnap = yes            the first zferry call (--create-src-snapshots)
#   autoprune = yes           the second one (--delete-dst-snapshots-except-plan)
#   (preferred times)         template_production sets none, so [template_default]'s apply:
#                             hourly at :00, daily at 23:59, weekly Monday 23:30, monthly on day 1 at 00:00
#
# Names are sanoid's own (autosnap_%Y-%m-%d_%H:%M:%S_<period>, local time). Run it like
# `sanoid --cron`, e.g. every 15 minutes from cron:
#   */15 * * * * /usr/local/bin/sanoid-template-production.sh tank/data
# Replicate the tree elsewhere with examples/sanoid-template-backup.sh on the backup host.
set -eu
DATASET=${1:?usage: $0 POOL/DATASET [zferry options, e.g. --dryrun -v]}
shift
ZFERRY=${ZFERRY:-zferry}
PLAN='{"autosnap": {"": {"hourly": 36, "daily": 30, "weekly": 4, "monthly": 3}}}'
ANCHORS="--hourly_minute 0 --daily_hour 23 --daily_minute 59 --weekly_weekday 1 --weekly_hour 23 --weekly_minute 30
 --monthly_monthday 1 --monthly_hour 0 --monthly_minute 0"

# autosnap: the due snapshots, one atomic `zfs snapshot` for the whole tree per name
# shellcheck disable=SC2086 # ANCHORS is a list of words
$ZFERRY "$DATASET" dummy -r --skip-replication --create-src-snapshots --create-src-snapshots-plan "$PLAN" $ANCHORS "$@"

# autoprune: keep per period the latest N and those younger than N periods; snapshots not named
# autosnap_* are kept (sanoid leaves them alone too)
$ZFERRY dummy "$DATASET" -r --skip-replication --delete-dst-snapshots \
  --delete-dst-snapshots-except-plan "$PLAN" --exclude-snapshot-regex 'autosnap_.*' "$@"
