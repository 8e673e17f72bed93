// Outside check of CAdES archive timestamps for firma's tests:
//   node check.js SIGNATURE.der CONTENT TSA-ROOT.der OUTDIR
// Parses the CMS with PKI.js and, for every archive-time-stamp-v3 of the
// first SignerInfo (ETSI EN 319 122-1 V1.1.1 5.5.3), rebuilds what its
// imprint covers from the encodings as found (eContentType, the hash of
// CONTENT, the SignerInfo's fields up to the signature, the token's
// ats-hash-index-v3), checks that index against the certificates, the
// revocation data and the unsigned attributes before the timestamp
// (5.5.2: one hash per attribute value, over attrType and that value),
// and has PKI.js verify the token: its signature, its chain to
// TSA-ROOT, and its imprint against the rebuilt bytes. Writes each
// token and its covered bytes to OUTDIR/ats-N.tst and OUTDIR/ats-N.data
// for `openssl ts -verify -data`. Prints a JSON report; exits 1 on any
// failure.
'use strict';
const fs = require('fs');
const path = require('path');
const nodeCrypto = require('crypto');
const asn1js = require('asn1js');
const pkijs = require('pkijs');

pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: nodeCrypto.webcrypto }));

const OID_ATS_V3 = '0.4.0.1733.2.4';
const OID_ATS_HASH_INDEX_V3 = '0.4.0.19122.1.5';
const HASHES = { '2.16.840.1.101.3.4.2.1': 'sha256', '2.16.840.1.101.3.4.2.2': 'sha384', '2.16.840.1.101.3.4.2.3': 'sha512' };

const bytes = (block) => Buffer.from(block.valueBeforeDecodeView);
const hash = (alg, ...parts) => nodeCrypto.createHash(alg).update(Buffer.concat(parts)).digest();
const ab = (buf) => buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);

function parse(buf) {
  const r = asn1js.fromBER(ab(buf));
  if (r.offset === -1) throw new Error('not BER: ' + r.result.error);
  return r.result;
}

// The SignedData's elements as encoded: certificates, crls, the first
// SignerInfo's fields.
function encodings(ci) {
  const sd = ci.valueBlock.value[1].valueBlock.value[0];
  const out = { certs: [], crls: [], si: null };
  for (const el of sd.valueBlock.value) {
    if (el.idBlock.tagClass === 3 && el.idBlock.tagNumber === 0) out.certs = el.valueBlock.value.map(bytes);
    if (el.idBlock.tagClass === 3 && el.idBlock.tagNumber === 1) out.crls = el.valueBlock.value.map(bytes);
  }
  const sis = sd.valueBlock.value[sd.valueBlock.value.length - 1];
  out.si = sis.valueBlock.value[0].valueBlock.value;
  return out;
}

function contains(index, hashes, what, exact) {
  const have = hashes.map((h) => h.toString('hex'));
  for (const h of index) {
    const i = have.indexOf(h.toString('hex'));
    if (i < 0) throw new Error(`ats-hash-index-v3 ${what}: ${h.toString('hex')} matches nothing in the signature`);
    have.splice(i, 1);
  }
  if (exact && have.length) throw new Error(`ats-hash-index-v3 ${what}: ${have.length} element(s) not covered`);
}

async function main() {
  const [sigFile, contentFile, rootFile, outDir] = process.argv.slice(2);
  const der = fs.readFileSync(sigFile);
  const asn = parse(der);
  const ci = new pkijs.ContentInfo({ schema: asn });
  const sd = new pkijs.SignedData({ schema: ci.content });
  const root = pkijs.Certificate.fromBER(ab(fs.readFileSync(rootFile)));
  const si = sd.signerInfos[0];
  const alg = HASHES[si.digestAlgorithm.algorithmId];
  if (!alg) throw new Error('digest algorithm ' + si.digestAlgorithm.algorithmId);
  const enc = encodings(asn);
  const contentType = Buffer.from(new asn1js.ObjectIdentifier({ value: sd.encapContentInfo.eContentType }).toBER(false));
  const contentDigest = hash(alg, fs.readFileSync(contentFile));
  // version, sid, digestAlgorithm, signedAttrs, signatureAlgorithm,
  // signature: every field before unsignedAttrs [1].
  const fields = enc.si.filter((b) => !(b.idBlock.tagClass === 3 && b.idBlock.tagNumber === 1)).map(bytes);
  const unsigned = enc.si.find((b) => b.idBlock.tagClass === 3 && b.idBlock.tagNumber === 1);
  if (!unsigned) throw new Error('no unsigned attributes');
  const report = { archiveTimestamps: [] };
  const attrParts = []; // per earlier attribute value: attrType || value
  let n = 0;
  for (const attr of unsigned.valueBlock.value) {
    const [type, values] = attr.valueBlock.value;
    const oid = type.valueBlock.toString();
    if (oid === OID_ATS_V3) {
      n++;
      const tokDER = bytes(values.valueBlock.value[0]);
      const tok = new pkijs.SignedData({ schema: new pkijs.ContentInfo({ schema: parse(tokDER) }).content });
      const idxAttr = tok.signerInfos[0].unsignedAttrs.attributes.find((a) => a.type === OID_ATS_HASH_INDEX_V3);
      if (!idxAttr) throw new Error(`archive timestamp ${n}: no ats-hash-index-v3`);
      const idxDER = bytes(idxAttr.values[0]);
      const seq = idxAttr.values[0].valueBlock.value;
      if (seq.length < 3 || seq.length > 4) throw new Error(`ats-hash-index-v3: ${seq.length} fields`);
      const [certIdx, crlIdx, attrIdx] = seq.slice(seq.length - 3).map((s) => s.valueBlock.value.map((o) => Buffer.from(o.valueBlock.valueHexView)));
      const last = n === unsigned.valueBlock.value.filter((a) => a.valueBlock.value[0].valueBlock.toString() === OID_ATS_V3).length;
      // Material added by a later renewal is not covered by this one.
      contains(certIdx, enc.certs.map((c) => hash(alg, c)), 'certificates', last);
      contains(crlIdx, enc.crls.map((c) => hash(alg, c)), 'crls', last);
      contains(attrIdx, attrParts.map((p) => hash(alg, p)), 'unsigned attributes', true);
      const data = Buffer.concat([contentType, contentDigest, ...fields, idxDER]);
      fs.writeFileSync(path.join(outDir, `ats-${n}.tst`), tokDER);
      fs.writeFileSync(path.join(outDir, `ats-${n}.data`), data);
      const tst = new pkijs.TSTInfo({ schema: parse(Buffer.from(tok.encapContentInfo.eContent.valueBlock.valueHexView)) });
      const imprintOK = await tst.verify({ data: ab(data) });
      // For a TSTInfo, PKI.js checks the imprint against data too.
      const signatureOK = await tok.verify({ signer: 0, data: ab(data), trustedCerts: [root], checkChain: true, checkDate: tst.genTime });
      report.archiveTimestamps.push({ genTime: tst.genTime.toISOString(), imprintOK, signatureOK,
        indexed: { certificates: certIdx.length, crls: crlIdx.length, attributes: attrIdx.length } });
      if (!imprintOK) throw new Error(`archive timestamp ${n}: the imprint does not match the covered bytes`);
      if (!signatureOK) throw new Error(`archive timestamp ${n}: the token does not verify`);
    }
    for (const v of values.valueBlock.value) attrParts.push(Buffer.concat([bytes(type), bytes(v)]));
  }
  if (n === 0) throw new Error('no archive-time-stamp-v3');
  console.log(JSON.stringify(report));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
