#!/usr/bin/env bash
# The cluster job's test: starts a private one-node Slurm cluster on this machine (munged, slurmctld
# and slurmd with their own key, socket, ports, state and logs in a temporary folder), submits
# scripts/run_benchmark.slurm to it on the bundled demo model, and checks the JSON the job writes.
# Installs what is missing first (Debian's slurm-wlm and munge; python3 to read the JSON), and
# always stops the daemons and removes the folder, on failure and on Ctrl-C too. Every wait has a
# timeout. Prints PASS, or FAIL with the reason and the tails of the logs (exit 1).
#
#   STREAMDIFFUSION_BIN  the binary to run in the job (default: .build/debug/streamdiffusion)
#   SLURM_TEST_TIMEOUT   seconds the job may take once submitted (default: 180)
#   SLURM_TEST_KEEP=1    keep the temporary folder (logs, results) for a look afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export PATH=$PATH:/usr/sbin:/sbin
export LC_ALL=C

say() { echo "test_slurm: $*"; }

# --- Install what is missing (only that, and say what) -------------------------------------------
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=""
for p in slurm-wlm munge; do   # (a removed package whose config files remain counts as missing)
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing="$missing $p"
done
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
if [ -n "$missing" ]; then
    command -v apt-get >/dev/null 2>&1 ||
        { echo "test_slurm: FAIL: no apt-get to install$missing; install Slurm (slurmctld, slurmd, client) and munge first" >&2; exit 1; }
    say "installing apt packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
for tool in munged mungekey munge slurmctld slurmd sbatch sinfo scontrol scancel python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "test_slurm: FAIL: $tool is not on PATH after installing slurm-wlm and munge" >&2; exit 1; }
done

BIN=${STREAMDIFFUSION_BIN:-.build/debug/streamdiffusion}
case $BIN in /*) ;; *) BIN=$REPO/$BIN ;; esac
[ -x "$BIN" ] || { echo "test_slurm: FAIL: no binary at $BIN (run 'swift build' or set STREAMDIFFUSION_BIN)" >&2; exit 1; }
MODEL=$REPO/Models/demo
[ -f "$MODEL/model_index.json" ] || { echo "test_slurm: FAIL: the demo model is missing from $MODEL" >&2; exit 1; }
JOB_TIMEOUT=${SLURM_TEST_TIMEOUT:-180}
# The smallest real run: one timed call per row, 64×64 on the demo model, 1 step.
BENCH_ARGS="--repeats 1 --size 64 --steps 1"
THROUGHPUT_STEPS="1"

# --- The private cluster's folder, names and ports -----------------------------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/streamdiffusion-slurm.XXXXXX")
chmod 711 "$T"   # munged requires every directory above its socket to be searchable by all
mkdir -p "$T/etc" "$T/state" "$T/spool" "$T/log" "$T/run" "$T/work" "$T/results"
mkdir -m 700 "$T/munge"; mkdir -m 755 "$T/munge-run"
CONF=$T/etc/slurm.conf
SOCK=$T/munge-run/munge.socket
TAG="STREAMDIFFUSION_SLURM_TEST=$T"   # in the environment of everything this test starts
NODE=$(hostname -s 2>/dev/null || uname -n); NODE=${NODE%%.*}   # what slurmd calls itself
CPUS=$(nproc)
MEM_MB=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
USER_NAME=$(id -un)
PIDS=()

# Everything Slurm-related runs with our config, our munge socket and the tag.
sl() { env "$TAG" SLURM_CONF="$CONF" "$@"; }

# The tails of the daemons' logs (a daemon's stderr only where it never opened its log) and of
# the jobs' output, without slurm's complaint that the PMIx library is absent (unused here).
show_logs() {
    local f
    for f in "$T"/log/*.log "$T"/log/*.stderr "$T"/work/*.out; do
        [ -f "$f" ] || continue
        [[ $f == *.stderr && -s ${f%.stderr}.log ]] && continue
        echo "----- last lines of $f" >&2
        grep -v -e 'pmix' -e 'MPI: Cannot create context' "$f" | tail -n 20 >&2
    done
}

LOGS_SHOWN=0
fail() {
    echo "test_slurm: FAIL: $*" >&2
    show_logs; LOGS_SHOWN=1
    exit 1
}

# Processes carrying our tag: the daemons, slurmstepd and the job's own processes.
tagged_pids() {
    local e pid
    for e in /proc/[0-9]*/environ; do
        pid=${e#/proc/}; pid=${pid%/environ}
        [ "$pid" = "$$" ] && continue
        grep -qzxF "$TAG" "$e" 2>/dev/null && echo "$pid"
    done
    return 0
}

cleanup() {
    local rc=$? pid deadline left
    trap - EXIT INT TERM
    if [ -S "$SOCK" ] && [ -f "$CONF" ]; then
        timeout 5 env SLURM_CONF="$CONF" scancel --full --user="$USER_NAME" >/dev/null 2>&1 || true
    fi
    # The daemons first (TERM, then KILL after 10 s), then anything else that carries our tag.
    for pid in "${PIDS[@]}" $(tagged_pids); do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$(( SECONDS + 10 ))
    while :; do
        left=""
        for pid in "${PIDS[@]}" $(tagged_pids); do kill -0 "$pid" 2>/dev/null && left="$left $pid"; done
        [ -z "$left" ] && break
        if [ $SECONDS -ge $deadline ]; then
            for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ "$rc" -eq 0 ] || [ "$LOGS_SHOWN" = 1 ] || show_logs
    left=$(tagged_pids)
    if [ -n "$left" ]; then
        echo "test_slurm: FAIL: processes still running after teardown:" >&2
        for pid in $left; do echo "  $pid $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" >&2; done
        rc=1
    fi
    if [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then
        say "kept $T"
    else
        rm -rf "$T"
    fi
    if [ "$rc" -eq 0 ]; then say "PASS ($SECONDS s; daemons stopped)"
    else echo "test_slurm: FAIL (exit $rc after $SECONDS s)" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "test_slurm: interrupted" >&2; exit 130' INT
trap 'echo "test_slurm: terminated" >&2; exit 143' TERM

# Two free TCP ports below the ephemeral range, so neither a system Slurm (6817/6818) nor an
# outgoing connection takes them.
read -r CTLD_PORT SLURMD_PORT < <(python3 - <<'EOF'
import random, socket
ports = []
while len(ports) < 2:
    p = random.randint(20000, 32000)
    if p in ports:
        continue
    s = socket.socket()
    try:
        s.bind(("", p)); ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*ports)
EOF
)
[ -n "$SLURMD_PORT" ] || fail "could not find two free TCP ports"

# --- munge: its own key and socket ----------------------------------------------------------------
mungekey --create --keyfile="$T/munge/munge.key" || fail "mungekey could not create a key"
env "$TAG" munged --foreground --socket="$SOCK" --key-file="$T/munge/munge.key" \
    --pid-file="$T/munge-run/munged.pid" --seed-file="$T/munge/munged.seed" \
    --log-file="$T/log/munged.log" > "$T/log/munged.log" 2>&1 &
PIDS+=($!)
deadline=$(( SECONDS + 15 ))
until munge --socket="$SOCK" --no-input >/dev/null 2>&1; do
    kill -0 "${PIDS[0]}" 2>/dev/null || fail "munged exited at start"
    [ $SECONDS -lt $deadline ] || fail "munged did not answer on $SOCK within 15 s"
    sleep 0.2
done

# --- Slurm: one node, one partition, no cgroups, no accounting ------------------------------------
# The daemons run as the user running this test (root in CI: Slurm then needs SlurmUser=root, and
# slurmd must be root to run jobs of other users — here only our own).
cat > "$CONF" <<EOF
ClusterName=sdtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$USER_NAME
SlurmdUser=$USER_NAME
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/run/slurmctld.pid
SlurmdPidFile=$T/run/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# (env, not the sl function, so that $! is the daemon itself rather than a subshell)
env "$TAG" SLURM_CONF="$CONF" slurmctld -D -i -f "$CONF" > "$T/log/slurmctld.stderr" 2>&1 &
PIDS+=($!)
env "$TAG" SLURM_CONF="$CONF" slurmd -D -f "$CONF" -N "$NODE" > "$T/log/slurmd.stderr" 2>&1 &
PIDS+=($!)
say "cluster sdtest: node $NODE ($CPUS CPUs, $MEM_MB MB), slurmctld port $CTLD_PORT, slurmd port $SLURMD_PORT, folder $T"

deadline=$(( SECONDS + 30 ))
state=""
while :; do
    kill -0 "${PIDS[1]}" 2>/dev/null || fail "slurmctld exited at start"
    kill -0 "${PIDS[2]}" 2>/dev/null || fail "slurmd exited at start"
    state=$(sl timeout 5 sinfo --noheader --nodes="$NODE" --format=%t 2>/dev/null || true)
    [ "$state" = idle ] && break
    [ $SECONDS -lt $deadline ] || fail "node $NODE is not idle after 30 s (sinfo says '${state:-nothing}')"
    sleep 0.5
done
say "node $NODE is idle"

# --- The job ---------------------------------------------------------------------------------------
# One CPU (the script's own header asks for 8, more than a small machine has); output and results
# in the temporary folder.
SBATCH_OPTS=(--cpus-per-task=1 --time=00:05:00 --chdir="$T/work" --output="$T/work/bench-%j.out")
test_only=$(sl timeout 10 sbatch --test-only "${SBATCH_OPTS[@]}" scripts/run_benchmark.slurm 2>&1) ||
    fail "sbatch --test-only refused the job: $test_only"
say "sbatch --test-only: $test_only"

job=$(sl STREAMDIFFUSION_BIN="$BIN" BENCH_MODEL="$MODEL" BENCH_ARGS="$BENCH_ARGS" RESULTS_DIR="$T/results" \
      timeout 10 sbatch --parsable "${SBATCH_OPTS[@]}" scripts/run_benchmark.slurm 2>&1) || fail "sbatch failed: $job"
job=${job%%;*}
[[ $job =~ ^[0-9]+$ ]] || fail "sbatch did not print a job id: $job"
say "submitted job $job"

# Waits for job $1 to end; sets JOB_STATE and JOB_EXIT (e.g. COMPLETED and 0:0).
wait_job() {
    local info deadline=$(( SECONDS + JOB_TIMEOUT ))
    while :; do
        info=$(sl timeout 5 scontrol --oneliner show job "$1" 2>/dev/null || true)
        JOB_STATE=$(sed -n 's/.* JobState=\([A-Z_]*\).*/\1/p' <<< "$info")
        case $JOB_STATE in
            PENDING|CONFIGURING|RUNNING|COMPLETING|"") ;;
            *) break ;;
        esac
        [ $SECONDS -lt $deadline ] || fail "job $1 did not finish within $JOB_TIMEOUT s (state ${JOB_STATE:-unknown})"
        sleep 0.5
    done
    JOB_EXIT=$(sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' <<< "$info")
}

wait_job "$job"
[ "$JOB_STATE" = COMPLETED ] && [ "$JOB_EXIT" = 0:0 ] ||
    fail "job $job ended $JOB_STATE with exit code ${JOB_EXIT:-unknown}"
[ -s "$T/work/bench-$job.out" ] || fail "the job's output file bench-$job.out is missing"
say "job $job: COMPLETED, exit code 0:0"

# --- The results -------------------------------------------------------------------------------------
python3 - "$T/results/$job" "$job" "$NODE" "$THROUGHPUT_STEPS" <<'EOF' || fail "the job's results are not what they should be"
import json, math, os, sys

folder, job, node, steps = sys.argv[1], sys.argv[2], sys.argv[3], [int(s) for s in sys.argv[4].split(",")]
problems = []

def load(name):
    path = os.path.join(folder, name)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f"{name}: {e}")
        return None

def positive(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0

def check_rows(name, doc, sections, steps):
    if not isinstance(doc, dict):
        problems.append(f"{name}: not a JSON object")
        return
    for key in ("backend", "model", "size"):
        if key not in doc:
            problems.append(f"{name}: no '{key}'")
    if doc.get("size") != 64:
        problems.append(f"{name}: size {doc.get('size')!r}, asked for 64")
    rows = doc.get("comparisons")
    if not isinstance(rows, list) or not rows:
        problems.append(f"{name}: no 'comparisons' rows")
        return
    seen = sorted((r.get("section"), r.get("steps")) for r in rows)
    wanted = sorted((s, n) for s in sections for n in steps)
    if seen != wanted:
        problems.append(f"{name}: rows {seen}, wanted {wanted}")
    for r in rows:
        for key in ("baselineMs", "oursMs", "speedup"):
            if not positive(r.get(key)):
                problems.append(f"{name}: {r.get('section')} {key} = {r.get(key)!r}, not a number > 0")
        if positive(r.get("baselineMs")) and positive(r.get("oursMs")) and positive(r.get("speedup")):
            if abs(r["speedup"] - r["baselineMs"] / r["oursMs"]) > 1e-6 * r["speedup"]:
                problems.append(f"{name}: {r['section']} speedup {r['speedup']} is not baselineMs/oursMs")

components = load("components.json")
throughput = load("throughput.json")
summary = load("summary.json")
if components is not None:
    check_rows("components.json", components, ["Stream Batch", "R-CFG", "Combined Pipeline"], [1])
if throughput is not None:
    check_rows("throughput.json", throughput, ["Throughput"], steps)
if summary is not None:
    if summary.get("job_id") != job:
        problems.append(f"summary.json: job_id {summary.get('job_id')!r}, not {job}")
    if summary.get("node") != node:
        problems.append(f"summary.json: node {summary.get('node')!r}, not {node}")
    if summary.get("exit_status") != 0:
        problems.append(f"summary.json: exit_status {summary.get('exit_status')!r}")
    for key in ("started", "finished", "backend", "gpu", "binary", "model"):
        if key not in summary:
            problems.append(f"summary.json: no '{key}'")
    if summary.get("cpus_per_task") != 1:
        problems.append(f"summary.json: cpus_per_task {summary.get('cpus_per_task')!r}, not 1")
    commands = summary.get("commands") or []
    if [c.get("bench") for c in commands] != ["components", "throughput"]:
        problems.append(f"summary.json: commands {commands!r}")
    for c in commands:
        if c.get("exit_status") != 0 or c.get("valid_json") is not True or c.get("output") != c.get("bench") + ".json":
            problems.append(f"summary.json: {c.get('bench')} exit_status {c.get('exit_status')!r}, "
                            f"valid_json {c.get('valid_json')!r}, output {c.get('output')!r}")
        if "--threads 1" not in c.get("command", ""):
            problems.append(f"summary.json: {c.get('bench')} did not run on the job's 1 CPU: {c.get('command')!r}")
for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
say "results: $(cd "$T/results/$job" && echo *.json) under <RESULTS_DIR>/$job, every row's speed-up a number > 0"

# --- A failing bench fails the job ------------------------------------------------------------------
bad=$(sl STREAMDIFFUSION_BIN="$BIN" BENCH_MODEL="$T/no-such-model" BENCH_ARGS="$BENCH_ARGS" RESULTS_DIR="$T/results" \
      timeout 10 sbatch --parsable "${SBATCH_OPTS[@]}" scripts/run_benchmark.slurm 2>&1) || fail "sbatch failed: $bad"
bad=${bad%%;*}
[[ $bad =~ ^[0-9]+$ ]] || fail "sbatch did not print a job id: $bad"
wait_job "$bad"
[ "$JOB_STATE" = FAILED ] && [ "$JOB_EXIT" = 1:0 ] ||
    fail "job $bad (a model that does not exist) ended $JOB_STATE with exit code ${JOB_EXIT:-unknown}, not FAILED 1:0"
[ -f "$T/results/$bad/components.failed.txt" ] && [ ! -e "$T/results/$bad/components.json" ] ||
    fail "job $bad left no components.failed.txt, or a components.json"
grep -q '"exit_status": 1$' "$T/results/$bad/summary.json" ||
    fail "job $bad's summary.json does not record exit status 1"
say "job $bad (a model that does not exist): FAILED, exit code 1:0, summary.json says so"
