//! The enrollment URI a push enrollment shows as a QR code:
//! `otpauth://totp/{label}:{user}?enrollment_tx_id=…&base_url=…&secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.

use url::Url;

use crate::error::Error;
use crate::totp::{Algorithm, TotpParams};

/// What the device needs from the URI to enroll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentUri {
    /// The enrollment ticket (secret: never printed).
    pub ticket: String,
    /// The device API's base URL (`{issuer}appliance-mfa`), without a trailing slash.
    pub base_url: String,
    /// The label the app shows (`issuer`, else the label before `:`).
    pub label: String,
    /// The account (the user's email), the label after `:`.
    pub account: String,
    pub totp: TotpParams,
}

/// Parses an enrollment URI; every error names what is wrong, never the ticket or secret.
pub fn parse(text: &str) -> Result<EnrollmentUri, Error> {
    let uri = Url::parse(text.trim()).map_err(|e| Error::new(format!("not a URI: {e}")))?;
    if uri.scheme() != "otpauth" || uri.host_str() != Some("totp") {
        return Err(Error::new("not an otpauth://totp/ enrollment URI"));
    }
    let path = percent_encoding::percent_decode_str(uri.path().trim_start_matches('/'))
        .decode_utf8()
        .map_err(|_| Error::new("the URI's label is not UTF-8"))?
        .into_owned();
    let (path_label, account) = match path.split_once(':') {
        Some((label, account)) => (label.to_owned(), account.trim_start().to_owned()),
        None => (String::new(), path),
    };

    let mut ticket = None;
    let mut base_url = None;
    let mut secret = None;
    let mut issuer = None;
    let mut algorithm = None;
    let mut digits = None;
    let mut period = None;
    for (key, value) in uri.query_pairs() {
        let slot = match key.as_ref() {
            "enrollment_tx_id" => &mut ticket,
            "base_url" => &mut base_url,
            "secret" => &mut secret,
            "issuer" => &mut issuer,
            "algorithm" => &mut algorithm,
            "digits" => &mut digits,
            "period" => &mut period,
            _ => continue,
        };
        if slot.is_some() {
            return Err(Error::new(format!("the URI has `{key}` twice")));
        }
        *slot = Some(value.into_owned());
    }

    let ticket = ticket.filter(|t| !t.is_empty()).ok_or_else(|| {
        Error::new("the URI has no enrollment_tx_id: it is not a push enrollment")
    })?;
    let base_url = base_url
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::new("the URI has no base_url"))?;
    let parsed_base =
        Url::parse(&base_url).map_err(|_| Error::new("the URI's base_url is not a URL"))?;
    if !matches!(parsed_base.scheme(), "https" | "http")
        || parsed_base.host_str().is_none()
        || parsed_base.query().is_some()
        || parsed_base.fragment().is_some()
    {
        return Err(Error::new("the URI's base_url is not an http(s) URL"));
    }
    let secret = secret.ok_or_else(|| Error::new("the URI has no secret"))?;
    let algorithm = match algorithm {
        None => Algorithm::Sha1,
        Some(name) => Algorithm::parse(&name)?,
    };
    let digits = match digits {
        None => 6,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|d| (6..=8).contains(d))
            .ok_or_else(|| Error::new("the URI's digits is not 6, 7 or 8"))?,
    };
    let period = match period {
        None => 30,
        Some(p) => p
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=600).contains(p))
            .ok_or_else(|| Error::new("the URI's period is not a number of seconds"))?,
    };
    let totp = TotpParams::new(&secret, algorithm, digits, period)?;
    let label = issuer.filter(|i| !i.is_empty()).unwrap_or(path_label);

    Ok(EnrollmentUri {
        ticket,
        base_url: base_url.trim_end_matches('/').to_owned(),
        label,
        account,
        totp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/Acme%20Corp:ada%40example.com?enrollment_tx_id=tkt_abc&base_url=https%3A%2F%2Fauth.example.com%2Fappliance-mfa&secret=JBSWY3DPEHPK3PXP&issuer=Acme%20Corp&algorithm=SHA1&digits=6&period=30";

    #[test]
    fn parses_a_push_enrollment_uri() {
        let uri = parse(URI).unwrap();
        assert_eq!(uri.ticket, "tkt_abc");
        assert_eq!(uri.base_url, "https://auth.example.com/appliance-mfa");
        assert_eq!(uri.label, "Acme Corp");
        assert_eq!(uri.account, "ada@example.com");
        assert_eq!(uri.totp.secret_base32(), "JBSWY3DPEHPK3PXP");
        assert_eq!(uri.totp.digits, 6);
        assert_eq!(uri.totp.period, 30);
        assert_eq!(uri.totp.algorithm, Algorithm::Sha1);
    }

    #[test]
    fn defaults_the_totp_parameters_and_takes_the_label_from_the_path() {
        let uri = parse("otpauth://totp/Acme:ada?enrollment_tx_id=t&base_url=http://localhost:3000/appliance-mfa/&secret=JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(uri.label, "Acme");
        assert_eq!(uri.base_url, "http://localhost:3000/appliance-mfa");
        assert_eq!((uri.totp.digits, uri.totp.period), (6, 30));
    }

    #[test]
    fn refuses_what_is_not_a_push_enrollment() {
        for (bad, says) in [
            ("https://example.com/", "otpauth"),
            ("otpauth://hotp/A:b?secret=JBSWY3DPEHPK3PXP", "otpauth"),
            (
                "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP&base_url=https://x/appliance-mfa",
                "enrollment_tx_id",
            ),
            (
                "otpauth://totp/A:b?enrollment_tx_id=t&secret=JBSWY3DPEHPK3PXP",
                "base_url",
            ),
            (
                "otpauth://totp/A:b?enrollment_tx_id=t&base_url=ftp://x/&secret=JBSWY3DPEHPK3PXP",
                "base_url",
            ),
            (
                "otpauth://totp/A:b?enrollment_tx_id=t&base_url=https://x/",
                "secret",
            ),
            (
                "otpauth://totp/A:b?enrollment_tx_id=t&base_url=https://x/&secret=not*base32",
                "secret",
            ),
            (
                "otpauth://totp/A:b?enrollment_tx_id=t&base_url=https://x/&secret=JBSWY3DPEHPK3PXP&digits=9",
                "digits",
            ),
            (
                "otpauth://totp/A:b?enrollment_tx_id=t&base_url=https://x/&secret=JBSWY3DPEHPK3PXP&algorithm=MD5",
                "algorithm",
            ),
            (
                "otpauth://totp/A:b?enrollment_tx_id=t&enrollment_tx_id=u&base_url=https://x/&secret=JBSWY3DPEHPK3PXP",
                "twice",
            ),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.message().contains(says), "{bad}: {err}");
            assert!(!err.message().contains("JBSWY3DPEHPK3PXP"));
        }
    }
}
