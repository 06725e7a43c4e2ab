//! Reads the enrollment URI from a PNG of its QR code (a screenshot of the
//! enrollment page).

use std::path::Path;

use crate::error::Error;

/// Images larger than this (in pixels) are refused rather than decoded.
const MAX_PIXELS: u64 = 40_000_000;

/// The text of the first QR code found in the PNG at `path`.
pub fn read_png(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
    decode_png(&bytes).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

pub fn decode_png(bytes: &[u8]) -> Result<String, Error> {
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let picture = reader
        .decode()
        .map_err(|e| Error::new(format!("not a PNG image: {e}")))?;
    if u64::from(picture.width()) * u64::from(picture.height()) > MAX_PIXELS {
        return Err(Error::new("the image is too large"));
    }
    let grey = picture.to_luma8();
    let (width, height) = (grey.width() as usize, grey.height() as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        grey.get_pixel(u32::try_from(x).unwrap_or(0), u32::try_from(y).unwrap_or(0))
            .0[0]
    });
    let grids = prepared.detect_grids();
    let mut last_error = None;
    for grid in grids {
        match grid.decode() {
            Ok((_, text)) => return Ok(text),
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) => Error::new(format!("the QR code could not be read: {e}")),
        None => Error::new("no QR code found in the image"),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PNG of `text` as a QR code: 4-pixel modules, a 4-module quiet zone.
    pub(crate) fn png_of(text: &str) -> Vec<u8> {
        let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
        let width = code.width();
        let colors = code.to_colors();
        let (scale, quiet) = (4usize, 4usize);
        let side = (width + 2 * quiet) * scale;
        let mut pixels = vec![255u8; side * side];
        for y in 0..width {
            for x in 0..width {
                if colors[y * width + x] == qrcode::Color::Dark {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            pixels[((y + quiet) * scale + dy) * side + (x + quiet) * scale + dx] =
                                0;
                        }
                    }
                }
            }
        }
        let picture = image::GrayImage::from_raw(side as u32, side as u32, pixels).unwrap();
        let mut png = Vec::new();
        picture
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    }

    #[test]
    fn decodes_an_enrollment_uri_from_a_png() {
        let uri = "otpauth://totp/Acme:ada%40example.com?enrollment_tx_id=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG&base_url=http%3A%2F%2Flocalhost%3A3000%2Fappliance-mfa&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme&algorithm=SHA1&digits=6&period=30";
        assert_eq!(decode_png(&png_of(uri)).unwrap(), uri);
    }

    #[test]
    fn says_what_is_wrong_with_other_files() {
        assert!(
            decode_png(b"not a png")
                .unwrap_err()
                .message()
                .contains("PNG")
        );
        let blank = image::GrayImage::from_pixel(64, 64, image::Luma([255]));
        let mut png = Vec::new();
        blank
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert!(
            decode_png(&png)
                .unwrap_err()
                .message()
                .contains("no QR code")
        );
    }
}
