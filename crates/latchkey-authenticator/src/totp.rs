//! TOTP (RFC 6238) codes from the enrollment's secret: what `code` prints, and
//! what the user can type at a login as the push method's `otp`.

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// `SHA1`, `sha256`, …: any case.
    pub fn parse(name: &str) -> Result<Self, Error> {
        match name.to_ascii_uppercase().as_str() {
            "SHA1" => Ok(Algorithm::Sha1),
            "SHA256" => Ok(Algorithm::Sha256),
            "SHA512" => Ok(Algorithm::Sha512),
            _ => Err(Error::new(format!(
                "the TOTP algorithm {name} is not supported"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

/// A TOTP secret and its parameters, as the state file keeps them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TotpWire", into = "TotpWire")]
pub struct TotpParams {
    secret: Vec<u8>,
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u64,
}

impl std::fmt::Debug for TotpParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpParams")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct TotpWire {
    secret: String,
    algorithm: String,
    digits: u32,
    period: u64,
}

impl TryFrom<TotpWire> for TotpParams {
    type Error = Error;
    fn try_from(wire: TotpWire) -> Result<Self, Error> {
        TotpParams::new(
            &wire.secret,
            Algorithm::parse(&wire.algorithm)?,
            wire.digits,
            wire.period,
        )
    }
}

impl From<TotpParams> for TotpWire {
    fn from(params: TotpParams) -> Self {
        TotpWire {
            secret: params.secret_base32(),
            algorithm: params.algorithm.as_str().to_owned(),
            digits: params.digits,
            period: params.period,
        }
    }
}

impl TotpParams {
    /// From a base32 secret (case, spaces and padding ignored).
    pub fn new(
        secret: &str,
        algorithm: Algorithm,
        digits: u32,
        period: u64,
    ) -> Result<Self, Error> {
        let normalised: String = secret
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let secret = data_encoding::BASE32_NOPAD
            .decode(normalised.as_bytes())
            .map_err(|_| Error::new("the TOTP secret is not base32"))?;
        if secret.len() < 10 {
            return Err(Error::new("the TOTP secret is shorter than 80 bits"));
        }
        if !(6..=8).contains(&digits) || !(1..=600).contains(&period) {
            return Err(Error::new("the TOTP parameters are out of range"));
        }
        Ok(TotpParams {
            secret,
            algorithm,
            digits,
            period,
        })
    }

    pub fn secret_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.secret)
    }

    /// The code for the Unix time `now` (seconds), zero-padded to `digits`.
    pub fn code_at(&self, now: i64) -> String {
        let step = u64::try_from(now).unwrap_or(0) / self.period;
        let algorithm = match self.algorithm {
            Algorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Algorithm::Sha256 => hmac::HMAC_SHA256,
            Algorithm::Sha512 => hmac::HMAC_SHA512,
        };
        let tag = hmac::sign(
            &hmac::Key::new(algorithm, &self.secret),
            &step.to_be_bytes(),
        );
        let mac = tag.as_ref();
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let binary = u32::from_be_bytes([
            mac[offset] & 0x7f,
            mac[offset + 1],
            mac[offset + 2],
            mac[offset + 3],
        ]);
        let code = binary % 10u32.pow(self.digits);
        format!("{code:0width$}", width = self.digits as usize)
    }

    /// Seconds until the code for `now` changes.
    pub fn remaining(&self, now: i64) -> u64 {
        self.period - u64::try_from(now).unwrap_or(0) % self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(seed: &[u8], algorithm: Algorithm) -> TotpParams {
        TotpParams::new(&data_encoding::BASE32_NOPAD.encode(seed), algorithm, 8, 30).unwrap()
    }

    /// RFC 6238 Appendix B.
    #[test]
    fn rfc_6238_vectors() {
        let sha1 = params(b"12345678901234567890", Algorithm::Sha1);
        let sha256 = params(b"12345678901234567890123456789012", Algorithm::Sha256);
        let sha512 = params(
            b"1234567890123456789012345678901234567890123456789012345678901234",
            Algorithm::Sha512,
        );
        for (time, one, two, five) in [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ] {
            assert_eq!(sha1.code_at(time), one, "SHA1 at {time}");
            assert_eq!(sha256.code_at(time), two, "SHA256 at {time}");
            assert_eq!(sha512.code_at(time), five, "SHA512 at {time}");
        }
    }

    #[test]
    fn six_digits_are_the_low_digits_and_padded() {
        let six = TotpParams::new(
            &data_encoding::BASE32_NOPAD.encode(b"12345678901234567890"),
            Algorithm::Sha1,
            6,
            30,
        )
        .unwrap();
        assert_eq!(six.code_at(59), "287082");
        assert_eq!(six.code_at(1_111_111_109), "081804");
        assert_eq!(six.remaining(59), 1);
    }

    #[test]
    fn secrets_are_read_leniently_and_refused_when_not_base32() {
        let a = TotpParams::new("jbsw y3dp ehpk 3pxp", Algorithm::Sha1, 6, 30).unwrap();
        assert_eq!(a.secret_base32(), "JBSWY3DPEHPK3PXP");
        assert!(TotpParams::new("JBSWY3DP1", Algorithm::Sha1, 6, 30).is_err());
        assert!(TotpParams::new("JBSWY3DP", Algorithm::Sha1, 6, 30).is_err());
        assert!(!format!("{a:?}").contains("JBSW"));
    }

    #[test]
    fn round_trips_through_json_as_base32() {
        let a = TotpParams::new("JBSWY3DPEHPK3PXP", Algorithm::Sha1, 6, 30).unwrap();
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"secret": "JBSWY3DPEHPK3PXP", "algorithm": "sha1", "digits": 6, "period": 30})
        );
        let back: TotpParams = serde_json::from_value(json).unwrap();
        assert_eq!(back, a);
    }
}
