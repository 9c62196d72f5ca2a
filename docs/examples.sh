#!/bin/sh
# Runs every example of docs/commands/ against the test lab and prints the transcript:
# `$ command`, then what it printed (stdout and stderr, in order), then `[exit N]` when it
# did not exit 0. The pages quote this output; run it again after a change of output.
#
#   sh docs/examples.sh > /tmp/docs-transcript.txt     (from the repository, after make test)
#
# The lab lives in /tmp/docs-lab, the store in /tmp/docs-store (/tmp/docs-store2 for the
# examples of docs/security.md), other files in /tmp/docs-work; they are removed first,
# and the lab is stopped at the end. Needs script(1) and flock(1) (util-linux) and openssl.
# Commands marked `# at a terminal` ran on a pseudo-terminal $COLUMNS wide.
set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY="$REPO/.venv/bin/python"
LAB=/tmp/docs-lab
WORK=/tmp/docs-work
export CERTCLI_CONFIG_DIR=/tmp/docs-store
export PATH="$REPO/.venv/bin:$PATH" PYTHONUNBUFFERED=1 COLUMNS=132
unset NO_COLOR CERTCLI_PASSPHRASE

"$PY" -m tests.lab down --dir "$LAB" 2>/dev/null
rm -rf "$LAB" "$CERTCLI_CONFIG_DIR" "$WORK"
mkdir -p "$WORK" "$WORK/unserved"
"$PY" -m tests.lab up --dir "$LAB" || exit 1
trap 'cd "$REPO" && "$PY" -m tests.lab down --dir "$LAB" 2>/dev/null' EXIT INT TERM
eval "$("$PY" -m tests.lab env --dir "$LAB")"
cd "$WORK"

section() { printf '\n######## %s\n' "$*"; }

# run CMD...: as from a script or cron (no terminal): plain lines, tab-separated tables
run() {
    printf '\n$ %s\n' "$*"
    sh -c "$*" </dev/null 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || echo "[exit $rc]"
}

# term CMD...: at a terminal (a pseudo-terminal from script(1)), colours and styles removed
term() {
    printf '\n$ %s   # at a terminal\n' "$*"
    script -qec "stty cols $COLUMNS; $*" /dev/null >"$WORK/.term"
    rc=$?
    sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\r$//' "$WORK/.term"
    [ "$rc" -eq 0 ] || echo "[exit $rc]"
}

# lab CODE: change the lab's DNS as a user changes theirs (not certcli)
lab() { "$PY" -c "import sys; sys.path.insert(0, '$REPO'); from pathlib import Path; from tests.lab import Lab; lab = Lab.load(Path('$LAB')); $*"; }

WEBROOT=$LAB/webroot

section help
for command in "" issue renew status download csr upload "san add" "san remove" "san list" \
    "dns check" revoke delete "account show" "account update" "account rollover" \
    "account deactivate" "config get" "config set"; do
    run certcli $command --help
done

section issue
run certcli --version
run certcli status
run certcli issue shop.certcli.test --webroot $WEBROOT
run certcli issue shop.certcli.test www.shop.certcli.test --webroot $WEBROOT --email ops@certcli.test --agree-tos
run certcli issue shop.certcli.test --webroot $WEBROOT
run certcli issue shop.certcli.test www.shop.certcli.test api.shop.certcli.test --webroot $WEBROOT --expand
run certcli issue blog.certcli.test --webroot $WEBROOT --dry-run
run certcli issue a.certcli.test b.certcli.test c.certcli.test --webroot $WEBROOT --each
run certcli issue rsa.certcli.test --webroot $WEBROOT --key-type rsa-3072 --json
run certcli issue lost.certcli.test --webroot $WORK/unserved
run certcli issue hooked.certcli.test --webroot $WEBROOT --deploy-hook "'echo \"\$RENEWED_LINEAGE\" >> $WORK/deployed.log'"
run cat $WORK/deployed.log
run ls -l $CERTCLI_CONFIG_DIR/certs/shop.certcli.test $CERTCLI_CONFIG_DIR/certs/shop.certcli.test/live/
run cat $CERTCLI_CONFIG_DIR/certs/shop.certcli.test/lineage.toml

section status
term certcli status
run certcli status
term certcli status shop.certcli.test
term certcli status lost.certcli.test
run certcli status shop.certcli.test --json
run certcli status --fail-on expiring
run certcli status --fail-on any
run certcli status nothing.certcli.test

section download
run certcli download shop.certcli.test --what cert "| head -3"
run certcli download shop.certcli.test --out fullchain.pem
run grep -c BEGIN fullchain.pem
run certcli download shop.certcli.test --what key
run certcli download shop.certcli.test --what bundle --include-key --out /tmp/docs-work/shop.pem
run ls -l /tmp/docs-work/shop.pem
run "printf 's3cret\n' > p12.pass"
run certcli download shop.certcli.test --what pkcs12 --include-key --password-file p12.pass --out shop.p12
run "openssl pkcs12 -in shop.p12 -passin pass:s3cret -nokeys -noenc | grep -E '^(subject|issuer)'"
run certcli download shop.certcli.test --what chain --out chain.pem --json
run certcli download shop.certcli.test --json
run certcli download lost.certcli.test

section renew
run "certcli renew; echo \"exit \$?\""
run certcli renew -v
run certcli renew c.certcli.test --json
run certcli renew --force shop.certcli.test
run certcli renew --dry-run a.certcli.test
run CERTCLI_WEBROOT=$WORK/unserved certcli renew --force b.certcli.test
term certcli status b.certcli.test
run certcli renew -v --no-jitter b.certcli.test
run certcli renew --force b.certcli.test --json
run certcli config set hooks.deploy "'echo \"\$RENEWED_DOMAINS\" >> $WORK/deployed.log'"
run certcli renew --force a.certcli.test c.certcli.test
run cat $WORK/deployed.log

section revoke
run certcli revoke c.certcli.test --reason keyCompromise
run certcli revoke a.certcli.test --reason 4 --json
run certcli renew --no-jitter
run certcli revoke lost.certcli.test

section delete
run certcli delete lost.certcli.test
run certcli delete lost.certcli.test --yes
run certcli delete rsa.certcli.test --yes --json
run certcli delete lost.certcli.test --yes

section dns
lab "open('$CERTCLI_CONFIG_DIR/config.toml', 'a').write(lab.dns_config('docs.acme-delegation.test'))"
chmod 600 $CERTCLI_CONFIG_DIR/config.toml
run "sed 's/^tsig_secret = .*/tsig_secret = \"…\"/' $CERTCLI_CONFIG_DIR/config.toml"
run certcli dns check wild.certcli.test "'*.wild.certcli.test'"
term certcli dns check wild.certcli.test
run certcli issue wild.certcli.test --wildcard
lab "lab.delegate('wild.certcli.test', 'docs.acme-delegation.test')"
lab "lab.delegate('wrong.certcli.test', 'elsewhere.acme-delegation.test')"
lab "lab.update('certcli.test', ('replace', '_acme-challenge.dup.certcli.test', 'TXT', ['\"left-over\"']), ('replace', 'dup.certcli.test', 'A', ['127.0.0.1']))"
run certcli dns check wild.certcli.test "'*.wild.certcli.test'"
term certcli dns check wild.certcli.test wrong.certcli.test dup.certcli.test missing.certcli.test
run certcli dns check wild.certcli.test wrong.certcli.test dup.certcli.test missing.certcli.test
run certcli dns check wild.certcli.test wrong.certcli.test --json
run certcli issue wild.certcli.test --wildcard
term certcli status wild.certcli.test
run certcli issue wrong.certcli.test --dns
chmod 644 $CERTCLI_CONFIG_DIR/config.toml
run certcli status wild.certcli.test --check-dns
chmod 600 $CERTCLI_CONFIG_DIR/config.toml
# dns-persist-01: a record for another account at the wildcard's name, none for app
lab "lab.update('certcli.test', ('replace', '_validation-persist.wild.certcli.test', 'TXT', ['\"a2c.test; accounturi=https://127.0.0.1/acct/other\"']))"
run CERTCLI_DNS_PERSIST_ISSUER=a2c.test certcli dns check --challenge dns-persist-01 app.certcli.test "'*.wild.certcli.test'"

section san
run certcli san add wild.certcli.test api.wild.certcli.test
run certcli san add shop.certcli.test new.shop.certcli.test
term certcli san list shop.certcli.test
run certcli san add wild.certcli.test other.certcli.test
term certcli san list wild.certcli.test
run certcli san list wild.certcli.test --json
run certcli san remove wild.certcli.test other.certcli.test
run certcli san remove shop.certcli.test api.shop.certcli.test --json
run certcli san add shop.certcli.test later.shop.certcli.test --no-issue
term certcli status
run certcli renew --no-jitter
run certcli san remove shop.certcli.test nothing.certcli.test

section csr
run certcli csr example.certcli.test www.example.certcli.test --org "'Example Ltd'" --country DE --out example.csr
run openssl req -in example.csr -noout -subject
run certcli csr example.certcli.test
run certcli csr shop.certcli.test
run certcli csr json.certcli.test --json
run ls -l $CERTCLI_CONFIG_DIR/certs/example.certcli.test/pending

section upload
# a throwaway CA signs the CSR, as a commercial CA would
"$PY" - <<EOF
import sys; sys.path.insert(0, "$REPO")
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tests.lab.localca import LocalCA, key_pem
ca = LocalCA("Example Issuing CA", intermediates=1)
issued = ca.sign_csr(Path("example.csr").read_bytes(), days=90)
Path("example.crt").write_bytes(issued.cert_pem)
Path("intermediates.pem").write_bytes(issued.chain_pem)
other = ca.issue(["example.certcli.test", "www.example.certcli.test", "shop2.certcli.test"], days=90)
Path("new.crt").write_bytes(other.cert_pem + issued.chain_pem)
Path("new.key").write_bytes(other.key_pem)
old = ca.issue(["old.certcli.test"], days=90, not_before=datetime.now(UTC) - timedelta(days=70))
Path("old.crt").write_bytes(old.fullchain_pem)
Path("old.key").write_bytes(old.key_pem)
EOF
run certcli upload example.certcli.test --cert example.crt --chain intermediates.pem
run certcli upload example.certcli.test --cert example.crt --chain intermediates.pem
run certcli upload example.certcli.test --cert new.crt --key new.key
run certcli upload example.certcli.test --cert new.crt --key old.key --yes
run certcli upload example.certcli.test --cert new.crt --key new.key --yes
run certcli upload copy.certcli.test --cert new.crt --key new.key
run certcli upload old.certcli.test --cert old.crt --key old.key --json
run certcli upload key.certcli.test --cert new.key --key new.key
term certcli status
run certcli status --fail-on expiring
run certcli renew -v --no-jitter
run ls $CERTCLI_CONFIG_DIR/certs/example.certcli.test/archive

section account
run certcli account show
run certcli account show --json
run certcli account update --email security@certcli.test
run certcli account rollover
run certcli account show --server letsencrypt-staging
run certcli account deactivate
run certcli account deactivate --yes --json

section config
run certcli config set renewal.jitter 120
run certcli config get renewal.jitter
run certcli config set dns.resolvers "'[\"127.0.0.1:5353\"]'" --json
run certcli config get dns.resolvers
run certcli config get hooks.deploy
run certcli config get notify.webhook
run certcli config get 'dns..target'
run ls -l $CERTCLI_CONFIG_DIR/config.toml
run ls -la $CERTCLI_CONFIG_DIR

section security
S=/tmp/docs-store2
rm -rf $S
export CERTCLI_CONFIG_DIR=$S
run certcli issue enc.certcli.test --webroot $WEBROOT --agree-tos -q
run certcli config set store.encrypt_keys true
run certcli renew --force enc.certcli.test
run CERTCLI_PASSPHRASE=correct-horse certcli renew --force enc.certcli.test
run ls -l $S/certs/enc.certcli.test/archive/0001 $S/certs/enc.certcli.test/archive/0002
run CERTCLI_PASSPHRASE=correct-horse certcli csr pending.certcli.test --out /dev/null -q
run ls -l $S/certs/pending.certcli.test/pending
run CERTCLI_PASSPHRASE=wrong certcli upload pending.certcli.test --cert $WORK/example.crt
run certcli config set hooks.deploy "'env | grep -E \"^(CERTCLI|RENEWED)_\" | sort > $WORK/hook-env.txt'"
run CERTCLI_PASSPHRASE=correct-horse CERTCLI_DNS_RFC2136_TSIG_SECRET=c2VjcmV0 certcli renew --force enc.certcli.test -q
run cat $WORK/hook-env.txt
run "find $S -printf '%M %p\n' | sed 's|$S|STORE|' | sort -k2"
# another process holds a lock (flock(1) standing in for a second certcli)
hold() { sh -c "echo \$\$ > $S/locks/$1; exec flock $S/locks/$1 sleep 3" & sleep 0.5; }
hold lineage-enc.certcli.test.lock
run CERTCLI_LOCK_WAIT=1 certcli san add enc.certcli.test www.enc.certcli.test
wait
hold store.lock
run certcli renew --force
wait

section end
