#!/bin/sh
# Generates the test PKI into $1 (default build/tests/certs).  Nothing here is
# committed: every run makes fresh keys.  Idempotent: a finished directory
# (marked by .done) is left alone.
set -eu
out=${1:-build/tests/certs}
[ -f "$out/.done" ] && exit 0
mkdir -p "$out"
cd "$out"
# Keep the system openssl.cnf (which may enable KTLS or change the security
# level) out of certificate generation.
export OPENSSL_CONF=/dev/null

days=30
sans="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

ca() { # name keyalg-opts... : a self-signed CA
	name=$1; shift
	openssl req -x509 -new -newkey "$@" -nodes -sha256 -days $days \
		-subj "/CN=ktls test $name" -keyout "$name.key" -out "$name.pem" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

leaf() { # name issuer digest ext newkey-opts... : a leaf signed by issuer
	name=$1 issuer=$2 md=$3 ext=$4; shift 4
	openssl req -new -newkey "$@" -nodes -subj "/CN=$name" \
		-keyout "$name.key" -out "$name.csr" 2>/dev/null
	printf '%s\nbasicConstraints=CA:FALSE\n' "$ext" > "$name.ext"
	openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" \
		-CAcreateserial -days $days "-$md" -extfile "$name.ext" -out "$name.pem" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
}

ca ca rsa:2048
ca other-ca ec -pkeyopt ec_paramgen_curve:P-256
ca weak-ca rsa:1024

leaf server-ec ca sha256 "$sans" ec -pkeyopt ec_paramgen_curve:P-256
leaf server-rsa ca sha256 "$sans" rsa:2048
leaf client ca sha256 "extendedKeyUsage=clientAuth" ec -pkeyopt ec_paramgen_curve:P-256
leaf untrusted other-ca sha256 "$sans" ec -pkeyopt ec_paramgen_curve:P-256
leaf rsa1024 ca sha256 "$sans" rsa:1024
leaf sha1 ca sha1 "$sans" rsa:2048
leaf p192 ca sha256 "$sans" ec -pkeyopt ec_paramgen_curve:prime192v1
leaf p224 ca sha256 "$sans" ec -pkeyopt ec_paramgen_curve:secp224r1
leaf weak-issued weak-ca sha256 "$sans" rsa:2048
leaf wildcard ca sha256 "subjectAltName=DNS:*.example.com" ec -pkeyopt ec_paramgen_curve:P-256
leaf partial-wildcard ca sha256 "subjectAltName=DNS:f*.example.com" ec -pkeyopt ec_paramgen_curve:P-256
# Chains chosen by server name (SNI): a.test; b.test and *.b.test in ECDSA and RSA.
leaf sni-a ca sha256 "subjectAltName=DNS:a.test" ec -pkeyopt ec_paramgen_curve:P-256
leaf sni-b-ec ca sha256 "subjectAltName=DNS:b.test,DNS:*.b.test" ec -pkeyopt ec_paramgen_curve:P-256
leaf sni-b-rsa ca sha256 "subjectAltName=DNS:b.test,DNS:*.b.test" rsa:2048

# Chains as servers present them (leaf first), and a CA bundle with a leaf.
for n in server-ec server-rsa client untrusted; do cat "$n.pem" > "$n-chain.pem"; done
cat ca.pem other-ca.pem server-ec.pem > bundle-2ca-1leaf.pem

# DH parameters: a 2048-bit named group (accepted) and a 1024-bit one (refused).
openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out dh2048.pem 2>/dev/null
openssl dhparam -out dh1024.pem 1024 2>/dev/null

# An empty CRL from the CA, and a CA + CRL bundle.
printf 'dir=.\n[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\ndefault_md=sha256\ndefault_crl_days=30\n' > crl.cnf
: > index.txt
openssl ca -config crl.cnf -gencrl -keyfile ca.key -cert ca.pem -out ca.crl 2>/dev/null
cat ca.pem ca.crl > ca-with-crl.pem
rm -f crl.cnf index.txt* *.srl

# Context/policy suites: an MD5-signed leaf, an encrypted key, cert+key in one
# file, a chain carrying a weak CA, a hashed CA directory, and the CA in DER.
leaf md5 ca md5 "$sans" rsa:2048
openssl pkey -in server-ec.key -aes256 -passout pass:secret -out server-ec-enc.key 2>/dev/null
cat server-ec.pem server-ec.key > server-ec-combined.pem
cat weak-issued.pem weak-ca.pem > weak-issued-chain.pem
mkdir -p capath && cp ca.pem capath/ && openssl rehash capath 2>/dev/null
openssl x509 -in ca.pem -outform DER -out ca.der
openssl x509 -in other-ca.pem -outform DER -out other-ca.der
rm -f *.srl

# What counts as a CA in cert_store_stats (X509_check_ca): a v1 self-signed
# certificate and a keyCertSign-only one do; a v3 one without BC/KU does not.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=ktls test v1" \
	-keyout selfsigned.key -out selfsigned.csr 2>/dev/null
openssl x509 -req -in selfsigned.csr -signkey selfsigned.key -days $days -out v1-ca.pem 2>/dev/null
printf 'keyUsage=critical,keyCertSign\n' > ss.ext
openssl x509 -req -in selfsigned.csr -signkey selfsigned.key -days $days -extfile ss.ext \
	-out ku-only-ca.pem 2>/dev/null
printf 'subjectAltName=DNS:nobc.example\n' > ss.ext
openssl x509 -req -in selfsigned.csr -signkey selfsigned.key -days $days -extfile ss.ext \
	-out no-bc-selfsigned.pem 2>/dev/null
rm -f selfsigned.csr ss.ext

# CRL checking (ctx_crl suite).  A leaf of ca that ca-revoking.crl revokes;
# a chain crl-root -> crl-int -> crl-leaf where crl-root-revoking.crl
# revokes the intermediate, crl-root.crl revokes nothing and crl-int.crl
# (the intermediate's own) revokes nothing.  Stores: trust anchor + CRLs.
crl() { # issuer out [cert]: a CRL from issuer, revoking cert when given
	printf 'dir=.\n[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\ndefault_md=sha256\ndefault_crl_days=30\n' > crl.cnf
	: > index.txt
	if [ $# -gt 2 ]; then
		openssl ca -config crl.cnf -revoke "$3" -keyfile "$1.key" -cert "$1.pem" 2>/dev/null
	fi
	openssl ca -config crl.cnf -gencrl -keyfile "$1.key" -cert "$1.pem" -out "$2" 2>/dev/null
	rm -f crl.cnf index.txt*
}
leaf revoked ca sha256 "$sans" ec -pkeyopt ec_paramgen_curve:P-256
crl ca ca-revoking.crl revoked.pem
cat ca.pem ca-revoking.crl > ca-revoking.pem
ca crl-root ec -pkeyopt ec_paramgen_curve:P-256
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/CN=ktls test crl-int" -keyout crl-int.key -out crl-int.csr 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > crl-int.ext
openssl x509 -req -in crl-int.csr -CA crl-root.pem -CAkey crl-root.key -CAcreateserial \
	-days $days -sha256 -extfile crl-int.ext -out crl-int.pem 2>/dev/null
rm -f crl-int.csr crl-int.ext
leaf crl-leaf crl-int sha256 "$sans" ec -pkeyopt ec_paramgen_curve:P-256
crl crl-root crl-root-revoking.crl crl-int.pem
crl crl-root crl-root.crl
crl crl-int crl-int.crl
cat crl-root.pem crl-root-revoking.crl crl-int.crl > crl-store-int-revoked.pem
cat crl-root.pem crl-root.crl crl-int.crl > crl-store-clean.pem
cat crl-root.pem crl-int.crl > crl-store-no-root-crl.pem
rm -f *.srl

# OCSP responses about server-ec, signed by its issuer (the CA): good,
# stale (nextUpdate yesterday), revoked; and a good one about server-rsa
# (the wrong certificate for server-ec), and a good one about sni-a (a chain
# chosen by server name).  openssl ocsp cannot backdate,
# Python's cryptography can.
python3 - <<'PY'
import datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

def load(n):
    return x509.load_pem_x509_certificate(open(n + '.pem', 'rb').read())
ca = load('ca')
key = serialization.load_pem_private_key(open('ca.key', 'rb').read(), None)
now = datetime.datetime.utcnow()
day = datetime.timedelta(days=1)
for out, leaf, status, this, nxt in (
        ('server-ec.ocsp.der', 'server-ec', ocsp.OCSPCertStatus.GOOD, now - day, now + 30 * day),
        ('server-ec-stale.ocsp.der', 'server-ec', ocsp.OCSPCertStatus.GOOD, now - 3 * day, now - day),
        ('server-ec-revoked.ocsp.der', 'server-ec', ocsp.OCSPCertStatus.REVOKED, now - day, now + 30 * day),
        ('server-rsa.ocsp.der', 'server-rsa', ocsp.OCSPCertStatus.GOOD, now - day, now + 30 * day),
        ('sni-a.ocsp.der', 'sni-a', ocsp.OCSPCertStatus.GOOD, now - day, now + 30 * day)):
    b = ocsp.OCSPResponseBuilder().add_response(
        cert=load(leaf), issuer=ca, algorithm=hashes.SHA1(), cert_status=status,
        this_update=this, next_update=nxt,
        revocation_time=now - day if status == ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=None).responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
    open(out, 'wb').write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
PY

touch .done
