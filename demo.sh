#!/usr/bin/env bash
#
# demo.sh: relais in five minutes of reading and a few seconds of running.
#
#   make demo                     builds, then runs this script
#   RELAIS_BIN=DIR ./demo.sh      with relaisd and relais already in DIR
#
# Everything it makes lives in var/demo/ and is thrown away at the next
# run: fresh CURVE keys for every agent of config/relais.conf, a copy of
# that configuration with those keys, a broker listening on a free local
# port, its store and its log.  The broker runs with manual_clock = yes so
# that the story can skip eleven days.
#
# Exit status: 0 if every step did what the story says, non-zero otherwise.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
BIN=${RELAIS_BIN:-$ROOT/bin}
DEMO=$ROOT/var/demo
KEYS=$DEMO/keys
LOG=$DEMO/relaisd.log
WAIT_S=10                       # longest wait for anything to show up

RELAIS=$BIN/relais
RELAISD=$BIN/relaisd

BROKER_PID=
LISTENER_PIDS=()
STEP="setting up"

# ---------------------------------------------------------------------------
# Presentation

if command -v jq >/dev/null 2>&1; then
	HAVE_JQ=yes
else
	HAVE_JQ=no
fi

chapter() {
	printf '\n==============================================================================\n'
	printf ' %s\n' "$*"
	printf '==============================================================================\n'
	STEP=$*
}

say() {
	printf '%s\n' "$@" | fold -s -w 78
}

# The command an agent types, as it would look in its own terminal.
show_cmd() {
	local who=$1
	shift
	printf '\n  [%s]$ %s\n' "$who" "$*"
}

# JSON lines on stdin, one per line (compact) or pretty-printed.
show_lines() {
	if [ "$HAVE_JQ" = yes ]; then
		jq -c . | sed 's/^/    /'
	else
		sed 's/^/    /'
	fi
}

show_pretty() {
	if [ "$HAVE_JQ" = yes ]; then
		jq . | sed 's/^/    /'
	else
		sed 's/^/    /'
	fi
}

die() {
	printf '\ndemo.sh: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------
# Clean-up: whatever happens, nothing this script started keeps running.

cleanup() {
	local status=$?

	for pid in ${LISTENER_PIDS[@]+"${LISTENER_PIDS[@]}"}; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	if [ -n "$BROKER_PID" ]; then
		kill -TERM "$BROKER_PID" 2>/dev/null || true
		wait "$BROKER_PID" 2>/dev/null || true
	fi
	if [ "$status" -ne 0 ]; then
		printf '\ndemo.sh: FAILED during "%s" (exit status %s)\n' \
		    "$STEP" "$status" >&2
		if [ -s "$LOG" ]; then
			printf 'demo.sh: last lines of the broker log (%s):\n' \
			    "$LOG" >&2
			tail -n 8 "$LOG" | sed 's/^/  /' >&2
		fi
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Agents

# Run the relais command as one of the agents of the registry.
as_agent() {
	local who=$1 cmd=$2
	shift 2
	"$RELAIS" "$cmd" --key "$KEYS/$who" "$@"
}

# Wait until a line of FILE contains TEXT (a fixed string); fail after
# WAIT_S seconds.  Polling a file, not sleeping blindly.
wait_for_line() {
	local file=$1 text=$2 what=$3
	local deadline=$((SECONDS + WAIT_S))

	until [ -f "$file" ] && grep -qF -- "$text" "$file"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			die "waited ${WAIT_S} s for $what in $file; it never came"
		fi
		sleep 0.1
	done
}

# The first line of FILE that contains TEXT.
first_line() {
	grep -F -- "$2" "$1" | head -n 1
}

# ---------------------------------------------------------------------------
# Moving the broker's clock.
#
# Only an operator may move it, and only on a broker started with
# manual_clock = yes (the demo's config sets it; the default never does).

# Move the broker's clock forward by DAYS days, as the operator "ops".
advance_clock() {
	as_agent ops clock advance "${1}d"
}

# ---------------------------------------------------------------------------
# The world: keys, configuration, broker

if [ ! -x "$RELAISD" ] || [ ! -x "$RELAIS" ]; then
	die "no relaisd and relais in $BIN: run 'make demo', or set RELAIS_BIN"
fi

chapter "0. Setting up a throw-away territory in var/demo/"

rm -rf "$DEMO"
mkdir -p "$KEYS"
chmod 700 "$KEYS"

# Every agent of the demo registry, in the order of config/relais.conf.
mapfile -t AGENTS < <(sed -n 's/^\[agent \([a-z0-9-]*\)\]$/\1/p' \
    "$ROOT/config/relais.conf")
[ "${#AGENTS[@]}" -gt 0 ] || die "no [agent ...] section in config/relais.conf"

say "Each partner structure is an agent with its own CURVE key pair." \
    "Only keys listed in the broker's registry can connect."
"$RELAIS" keygen "$KEYS/broker" >/dev/null
for id in "${AGENTS[@]}"; do
	"$RELAIS" keygen "$KEYS/$id" >/dev/null
done
printf '\n  keys: broker %s\n' "${AGENTS[*]}"

# The demo registry of config/relais.conf, with the fresh public keys in
# place of the placeholders, and broker settings fit for a demo.
awk -v keys="$KEYS" '
	function keyof(id,    line, k, f) {
		f = keys "/" id ".pub"
		while ((getline line < f) > 0)
			if (line !~ /^# / && length(line) == 40)
				k = line
		close(f)
		return k
	}
	/^\[/ {
		section = $0
		agent = ""
		if (match($0, /^\[agent [a-z0-9-]+\]$/))
			agent = substr($0, 8, length($0) - 8)
	}
	section == "[broker]" && /^listen *=/ { print "listen = tcp://127.0.0.1:*"; next }
	section == "[broker]" && /^data_dir *=/ { print "data_dir = data"; next }
	section == "[broker]" && /^secret_key_file *=/ { print "secret_key_file = keys/broker.key"; next }
	section == "[broker]" && /^public_key_file *=/ { print "public_key_file = keys/broker.pub"; next }
	section == "[broker]" && /^map_size_mb *=/ { print "map_size_mb = 64"; next }
	section == "[broker]" && /^log_level *=/ { print "log_level = info"; next }
	section == "[broker]" && /^manual_clock *=/ { print "manual_clock = yes"; next }
	agent != "" && /^public_key *=/ { print "public_key = " keyof(agent); next }
	{ print }
' "$ROOT/config/relais.conf" >"$DEMO/relais.conf"

grep -q '^manual_clock = yes$' "$DEMO/relais.conf" ||
    die "config/relais.conf has no manual_clock line to switch on"
if grep -q '^public_key = *$' "$DEMO/relais.conf"; then
	die "an agent of config/relais.conf got no key"
fi
printf '  config: %s (from config/relais.conf: %s agents,\n' \
    "$DEMO/relais.conf" "${#AGENTS[@]}"
printf '          listen tcp://127.0.0.1:*, manual_clock = yes)\n'
show_cmd operator "relaisd --check-config var/demo/relais.conf"
"$RELAISD" --check-config "$DEMO/relais.conf" | sed 's/^/    /'

"$RELAISD" -c "$DEMO/relais.conf" --ready-file "$DEMO/ready" 2>"$LOG" &
BROKER_PID=$!
deadline=$((SECONDS + WAIT_S))
until [ -s "$DEMO/ready" ]; do
	kill -0 "$BROKER_PID" 2>/dev/null || die "relaisd exited at start-up"
	[ "$SECONDS" -lt "$deadline" ] || die "relaisd not ready after ${WAIT_S} s"
	sleep 0.05
done
RELAIS_ENDPOINT=$(head -n 1 "$DEMO/ready")
RELAIS_SERVER_KEY=$KEYS/broker.pub
export RELAIS_ENDPOINT RELAIS_SERVER_KEY
show_cmd operator "relaisd -c var/demo/relais.conf --ready-file var/demo/ready &"
say "    The broker is up on $RELAIS_ENDPOINT (pid $BROKER_PID); its log, one" \
    "    JSON line per step, goes to var/demo/relaisd.log:"
first_line "$LOG" '"broker.ready"' | show_lines
say "" "Every agent below finds the broker through RELAIS_ENDPOINT and" \
    "RELAIS_SERVER_KEY, and proves who it is with its own key pair" \
    "(--key var/demo/keys/AGENT, left out of the commands shown)."

# Two people met in the Sanitas, known on the bus only by pseudonyms.
P1=sanitas-7f3a
P2=sanitas-2c91

# What the mediator may tell the Mission locale about P1, and only it.
CONTACT_NAME="Awa D."
CONTACT_PHONE=0612345678
CONTACT_TIME="après 17 h"

# ---------------------------------------------------------------------------

chapter "1. A street mediator meets someone in the Sanitas"

say "The adult-relay mediators of the Sanitas (agent mediateurs-sanitas) meet" \
    "a young person at the foot of a building.  On the bus the person is the" \
    "pseudonym $P1: no name, no phone number, no social-security number" \
    "ever travels in clear (a value that looks like one is refused)."
show_cmd mediateurs-sanitas "relais send participant.identified participant=$P1 qpv=sanitas age_band=under_26 source=outreach"
as_agent mediateurs-sanitas send participant.identified participant=$P1 \
    qpv=sanitas age_band=under_26 source=outreach | show_lines

say "" "The mediator refers them to the Mission locale (ml-tours).  So that the" \
    "adviser can call back, the referral carries the person's first name and" \
    "phone number, sealed on the mediator's machine to ml-tours's public key" \
    "(which relais asks the broker for): only ml-tours can open them, the" \
    "broker stores and forwards bytes it cannot read.  Nobody is connected" \
    "as ml-tours right now: the referral waits in its durable mailbox."
show_cmd mediateurs-sanitas "relais send referral.sent participant=$P1 referral=ref-ml-0001 to=ml-tours purpose=cej --contact name='$CONTACT_NAME' phone=$CONTACT_PHONE best_time='$CONTACT_TIME'"
as_agent mediateurs-sanitas send referral.sent participant=$P1 \
    referral=ref-ml-0001 to=ml-tours purpose=cej \
    --contact name="$CONTACT_NAME" phone="$CONTACT_PHONE" \
    best_time="$CONTACT_TIME" | show_lines
say "" "\"ok\" means the event, the participant's pathway and the delivery to" \
    "ml-tours are on disk (synced) before the answer left the broker."

# ---------------------------------------------------------------------------

chapter "2. The Mission locale comes online and accepts"

say "An adviser of the Mission locale opens the relais terminal.  The referral" \
    "sent while they were away is delivered at once:"
show_cmd ml-tours "relais listen --count 1"
as_agent ml-tours listen --count 1 --timeout-ms $((WAIT_S * 1000)) \
    >"$DEMO/ml-tours.jsonl"
grep -qF '"referral.sent"' "$DEMO/ml-tours.jsonl" ||
    die "ml-tours did not receive the referral"
grep -qF "\"phone\":\"$CONTACT_PHONE\"" "$DEMO/ml-tours.jsonl" ||
    die "ml-tours's terminal did not open the sealed contact"
show_pretty <"$DEMO/ml-tours.jsonl"
say "" "The broker added who sent it (from the sender's key, never from the" \
    "payload) and when it was recorded.  ml-tours's relais opened the sealed" \
    "contact with its own secret key: the adviser can call $CONTACT_NAME at" \
    "$CONTACT_PHONE.  The adviser accepts:"
show_cmd ml-tours "relais send referral.accepted participant=$P1 referral=ref-ml-0001"
as_agent ml-tours send referral.accepted participant=$P1 \
    referral=ref-ml-0001 | show_lines

# ---------------------------------------------------------------------------

chapter "3. The mediator learns that the referral was accepted"

show_cmd mediateurs-sanitas "relais listen --count 1"
as_agent mediateurs-sanitas listen --count 1 --timeout-ms $((WAIT_S * 1000)) \
    >"$DEMO/mediateurs-sanitas.jsonl"
grep -qF '"referral.accepted"' "$DEMO/mediateurs-sanitas.jsonl" ||
    die "the mediator did not receive the acceptance"
show_pretty <"$DEMO/mediateurs-sanitas.jsonl"
say "" "The hand-over worked: $P1 now has somewhere to go."

# ---------------------------------------------------------------------------

chapter "4. A rupture: a referral nobody answers"

say "The Cité de l'emploi (agent cite-emploi) coordinates the territory.  Its" \
    "terminal watches for alerts; here it runs in the background and writes" \
    "to var/demo/cite-emploi.jsonl, which we read as it fills."
show_cmd cite-emploi "relais alerts --follow > var/demo/cite-emploi.jsonl &"
# Started directly, not through as_agent: $! must be the listener itself,
# not a subshell that would outlive a kill.
"$RELAIS" alerts --follow --key "$KEYS/cite-emploi" >"$DEMO/cite-emploi.jsonl" \
    2>"$DEMO/cite-emploi.err" &
LISTENER_PIDS+=($!)
wait_for_line "$LOG" '"agent.hello","agent":"cite-emploi"' \
    "the coordinator to connect"

say "" "The mediators meet a second person, $P2, and refer them to France" \
    "Travail Tours Nord (ft-tours-nord) to register as a job seeker."
show_cmd mediateurs-sanitas "relais send participant.identified participant=$P2 qpv=sanitas age_band=26_49 source=outreach"
as_agent mediateurs-sanitas send participant.identified participant=$P2 \
    qpv=sanitas age_band=26_49 source=outreach | show_lines
show_cmd mediateurs-sanitas "relais send referral.sent participant=$P2 referral=ref-ft-0001 to=ft-tours-nord purpose=inscription"
as_agent mediateurs-sanitas send referral.sent participant=$P2 \
    referral=ref-ft-0001 to=ft-tours-nord purpose=inscription | show_lines

say "" "Nobody at France Travail answers.  The rule referral_unanswered" \
    "(config: referral_unanswered = 10 days) is armed as a deadline in the" \
    "broker.  Instead of waiting ten days, the operator moves the demo" \
    "broker's clock forward by 11 days:"
show_cmd ops "relais clock advance 11d"
advance_clock 11 >"$DEMO/clock.json"
show_lines <"$DEMO/clock.json"
if [ "$HAVE_JQ" = yes ]; then
	say "    The broker's clock now reads $(jq -r '.now / 1000 | todate' \
	    "$DEMO/clock.json") (UTC)."
fi

say "" "Within a second the broker's sweep finds the due deadline and opens an" \
    "alert.  The coordinator's terminal shows it:"
wait_for_line "$DEMO/cite-emploi.jsonl" '"change":"opened"' \
    "the referral_unanswered alert"
first_line "$DEMO/cite-emploi.jsonl" '"change":"opened"' | show_pretty
grep -qF '"rule":"referral_unanswered"' "$DEMO/cite-emploi.jsonl" ||
    die "the alert that opened is not referral_unanswered"

# ---------------------------------------------------------------------------

chapter "5. France Travail answers; the alert resolves itself"

say "The France Travail adviser connects.  Waiting: the referral, and the" \
    "reminder the rule sends to the agent that should answer."
show_cmd ft-tours-nord "relais listen --count 2"
as_agent ft-tours-nord listen --count 2 --timeout-ms $((WAIT_S * 1000)) \
    >"$DEMO/ft-tours-nord.jsonl"
grep -qF '"ref-ft-0001"' "$DEMO/ft-tours-nord.jsonl" ||
    die "ft-tours-nord did not receive its referral"
show_lines <"$DEMO/ft-tours-nord.jsonl"
show_cmd ft-tours-nord "relais send referral.accepted participant=$P2 referral=ref-ft-0001"
as_agent ft-tours-nord send referral.accepted participant=$P2 \
    referral=ref-ft-0001 | show_lines

say "" "The missing answer has arrived, so the broker resolves the alert on its" \
    "own and tells the coordinator:"
wait_for_line "$DEMO/cite-emploi.jsonl" '"change":"resolved"' \
    "the alert to resolve"
first_line "$DEMO/cite-emploi.jsonl" '"change":"resolved"' | show_pretty

# ---------------------------------------------------------------------------

chapter "6. The indicators for the Contrat de ville"

# The demo's period, in Paris dates: from the day it started to the day the
# broker's clock now reads (one day more on each side covers midnight).
REPORT_FROM=$(date -u -d "@$(( $(date -u +%s) - 86400 ))" +%F)
REPORT_TO=$(date -u -d "@$(( $(as_agent ops clock | jq '.now / 1000 | floor') + 86400 ))" +%F)
say "The coordinator prepares the review: every indicator of the programme's" \
    "sheet, kept by the broker as the events arrived, for the demo's period."
show_cmd cite-emploi "relais report --from $REPORT_FROM --to $REPORT_TO --by qpv --format table"
as_agent cite-emploi report --from "$REPORT_FROM" --to "$REPORT_TO" --by qpv \
    --format table | sed 's/^/    /' ||
    die "relais report failed"
say "" "And who refers to whom, the map of actors:"
show_cmd cite-emploi "relais report --from $REPORT_FROM --to $REPORT_TO --flows --format table"
as_agent cite-emploi report --from "$REPORT_FROM" --to "$REPORT_TO" --flows \
    --format table | sed 's/^/    /' ||
    die "relais report --flows failed"
say "" "The same with --format csv opens in a spreadsheet; --format json feeds a" \
    "program.  Distinct people (followed, confidence) are given for calendar" \
    "months, quarters and years, e.g. relais report --year $(date -u +%Y)."

# ---------------------------------------------------------------------------

chapter "7. Behind the scenes: what the broker holds of the phone number"

say "The operator takes a backup of the running broker, then looks for" \
    "$CONTACT_PHONE and \"$CONTACT_NAME\" in the store, its backup and the log."
show_cmd operator "relaisd -c var/demo/relais.conf --backup var/demo/backup"
"$RELAISD" -c "$DEMO/relais.conf" --backup "$DEMO/backup" >/dev/null 2>"$DEMO/backup.err" ||
    die "relaisd --backup failed: $(cat "$DEMO/backup.err")"
found=0
for f in "$DEMO/data/data.mdb" "$DEMO/backup/data.mdb" "$LOG"; do
	show_cmd operator "grep -c -a -F -e '$CONTACT_PHONE' -e '$CONTACT_NAME' ${f#"$ROOT"/}"
	n=$(grep -c -a -F -e "$CONTACT_PHONE" -e "$CONTACT_NAME" "$f" || true)
	if [ "$n" -eq 0 ]; then
		printf '    0: not found\n'
	else
		printf '    %s: FOUND\n' "$n"
		found=1
	fi
done
[ "$found" -eq 0 ] || die "the broker holds the sealed contact in clear"
say "" "Nowhere: the broker holds only the sealed bytes, which ml-tours alone" \
    "can open."

chapter "8. Behind the scenes: the broker's log"

for pid in ${LISTENER_PIDS[@]+"${LISTENER_PIDS[@]}"}; do
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
LISTENER_PIDS=()

show_cmd operator "kill -TERM $BROKER_PID    # graceful stop"
kill -TERM "$BROKER_PID"
status=0
wait "$BROKER_PID" || status=$?
BROKER_PID=
[ "$status" -eq 0 ] || die "relaisd exited with status $status after SIGTERM"

if [ "$HAVE_JQ" = yes ]; then
	show_cmd operator "jq -c 'select(.msg | test(\"^(alert|clock|broker)\"))' var/demo/relaisd.log"
	jq -c 'select(.msg | test("^(alert|clock|broker)"))' "$LOG" |
	    sed 's/^/    /'
else
	show_cmd operator "grep -E '\"msg\":\"(alert|clock|broker)' var/demo/relaisd.log"
	grep -E '"msg":"(alert|clock|broker)' "$LOG" | sed 's/^/    /'
fi

STEP="finishing"
printf '\nDemo complete.  Everything is in var/demo/ (keys, config, store, log).\n'
