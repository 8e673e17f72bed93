// Outside XAdES check for firma's tests: node check.js SIGNED.xml [DETACHED]
// Verifies every reference and the signature value with xadesjs (over
// xmldsigjs), then reads the qualifying properties through xadesjs's own
// XAdES model and prints them as JSON. Exits 1 on any failure.
'use strict';
const fs = require('fs');
const { webcrypto } = require('crypto');
const { DOMParser } = require('@xmldom/xmldom');
const xadesjs = require('xadesjs');
const xmldsigjs = require('xmldsigjs');

xadesjs.Application.setEngine('NodeJS', webcrypto);

async function main() {
  const [file, detached] = process.argv.slice(2);
  const xml = fs.readFileSync(file, 'utf8');
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  const sigs = doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'Signature');
  if (sigs.length !== 1) throw new Error(`${sigs.length} signatures, want 1`);
  const signed = new xadesjs.SignedXml(doc);
  signed.LoadXml(sigs[0]);
  if (detached) {
    const content = new Uint8Array(fs.readFileSync(detached));
    signed.contentHandler = async (ref) => (ref.Uri && !ref.Uri.startsWith('#') ? content : null);
  }
  // For RSA the key is the first certificate's of KeyInfo (the signer's;
  // the rest is its chain): xmldsigjs would otherwise import every
  // certificate's key as RSA, failing on the test PKI's EC CAs. An EC key
  // passed in loses its curve when xmldsigjs re-imports it, so for ECDSA
  // xmldsigjs takes the keys of KeyInfo itself.
  const alg = xmldsigjs.CryptoConfig.CreateSignatureAlgorithm(signed.XmlSignature.SignedInfo.SignatureMethod);
  let key = null;
  for (const kic of signed.XmlSignature.KeyInfo.GetIterator()) {
    if (kic instanceof xmldsigjs.KeyInfoX509Data && kic.Certificates.length) {
      key = await kic.Certificates[0].exportKey(alg.algorithm);
      break;
    }
  }
  if (!key) throw new Error('no X509Certificate in KeyInfo');
  const ok = alg.algorithm.name.startsWith('RSA') ? await signed.Verify(key) : await signed.Verify();
  if (!ok) throw new Error('xadesjs: signature does not verify');
  const props = signed.SignedProperties;
  const ssp = props.SignedSignatureProperties;
  const out = {
    verified: true,
    signingTime: ssp.SigningTime.Value ? ssp.SigningTime.Value.toISOString() : null,
    signingCertificateV2: [],
    dataObjectFormats: [],
    policy: null,
    signatureTimeStamps: 0,
  };
  ssp.SigningCertificateV2.ForEach((c) => {
    out.signingCertificateV2.push({
      digestMethod: c.CertDigest.DigestMethod.Algorithm,
      digest: Buffer.from(c.CertDigest.DigestValue).toString('base64'),
    });
  });
  props.SignedDataObjectProperties.DataObjectFormats.ForEach((f) => {
    out.dataObjectFormats.push({ objectReference: f.ObjectReference, mimeType: f.MimeType });
  });
  const spi = ssp.SignaturePolicyIdentifier;
  if (spi && spi.SignaturePolicyId && spi.SignaturePolicyId.SigPolicyId && spi.SignaturePolicyId.SigPolicyId.Identifier.Value) {
    out.policy = {
      identifier: spi.SignaturePolicyId.SigPolicyId.Identifier.Value,
      digest: Buffer.from(spi.SignaturePolicyId.SigPolicyHash.DigestValue).toString('base64'),
    };
  }
  const up = signed.UnsignedProperties;
  if (up && up.UnsignedSignatureProperties) {
    up.UnsignedSignatureProperties.ForEach((p) => {
      if (p.localName === 'SignatureTimeStamp') out.signatureTimeStamps++;
    });
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
