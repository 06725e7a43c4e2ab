// TOTP (RFC 6238 over RFC 4226 HOTP) with node:crypto: HMAC-SHA1, 30-second
// steps, 6 digits — what an authenticator app computes from the base32 secret
// a server hands out (`manual_input_code`, or `secret=` in the otpauth URI).

import crypto from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (case-insensitive, padding and spaces ignored) → bytes. */
export function base32Decode(text) {
  const clean = String(text).replace(/[\s=]/g, '').toUpperCase();
  if (clean.length === 0) throw new Error('empty base32 string');
  const out = [];
  let value = 0;
  let bits = 0;
  for (const c of clean) {
    const i = BASE32.indexOf(c);
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(text)} (character ${JSON.stringify(c)})`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >> bits) & 0xff);
      value &= (1 << bits) - 1;
    }
  }
  return Buffer.from(out);
}

/** HOTP(key, counter) with HMAC-SHA1 and `digits` digits (RFC 4226 §5.3). */
export function hotp(key, counter, digits = 6) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac('sha1', key).update(msg).digest();
  const o = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[o] & 0x7f) << 24) | (mac[o + 1] << 16) | (mac[o + 2] << 8) | mac[o + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/**
 * TOTP code for `time` (ms since the epoch) shifted by `offset` steps.
 * `key` is the raw secret (Buffer) or its base32 text.
 */
export function totp(key, { time = Date.now(), step = 30, digits = 6, offset = 0 } = {}) {
  const raw = Buffer.isBuffer(key) ? key : base32Decode(key);
  return hotp(raw, Math.floor(time / 1000 / step) + offset, digits);
}

/** Milliseconds left in the current 30-second step. */
export const msLeftInStep = (time = Date.now(), step = 30) => step * 1000 - (time % (step * 1000));

/** RFC 6238 appendix B (SHA-1 rows): throws if this implementation disagrees. */
export function selfTest() {
  const key = Buffer.from('12345678901234567890', 'ascii');
  const vectors = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ];
  for (const [t, want] of vectors) {
    const got = totp(key, { time: t * 1000, digits: 8 });
    if (got !== want) throw new Error(`TOTP self-test failed at T=${t}: got ${got}, want ${want}`);
  }
  if (base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ').toString('ascii') !== '12345678901234567890') {
    throw new Error('base32 self-test failed');
  }
}
