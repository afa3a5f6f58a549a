//! Japanese public codes the directory relies on (DOMAIN.md §6). Accuracy matters more than
//! richness, so each code is checked to the extent its public definition allows.

use std::fmt;

use serde::{Deserialize, Serialize};

/// 全国地方公共団体コード: a 6-digit municipality code (JIS X 0401 prefecture + JIS X 0402
/// municipality + check digit). The sixth digit is the check digit over the first five.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MunicipalityCode(String);

impl MunicipalityCode {
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let digits: Vec<u32> = value.chars().filter_map(|c| c.to_digit(10)).collect();
        if value.len() != 6 || digits.len() != 6 {
            return Err("must be 6 digits");
        }
        let prefecture = digits[0] * 10 + digits[1];
        if !(1..=47).contains(&prefecture) {
            return Err("must start with a prefecture number from 01 to 47");
        }
        let sum: u32 = digits[..5].iter().zip([6, 5, 4, 3, 2]).map(|(d, w)| d * w).sum();
        let check = (11 - sum % 11) % 10;
        if digits[5] != check {
            return Err("has a wrong check digit");
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MunicipalityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 医療機関コード: 10 digits, prefecture number (01–47), score-table number (1 medical, 3 dental,
/// 4 pharmacy, 6 visiting nursing), then the 7-digit institution number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MedicalInstitutionCode(String);

impl MedicalInstitutionCode {
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        if value.len() != 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be 10 digits");
        }
        let prefecture: u32 = value[..2].parse().map_err(|_| "must be 10 digits")?;
        if !(1..=47).contains(&prefecture) {
            return Err("must start with a prefecture number from 01 to 47");
        }
        if !matches!(&value[2..3], "1" | "3" | "4" | "6") {
            return Err("must have 1 (medical), 3 (dental), 4 (pharmacy) or 6 (visiting nursing) as its third digit");
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_municipality_codes_pass_their_check_digit() {
        for code in ["131016", "011002", "271004", "141003", "472018"] {
            assert!(MunicipalityCode::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn municipality_code_refuses_bad_check_digit_length_and_prefecture() {
        assert_eq!(MunicipalityCode::parse("131017"), Err("has a wrong check digit"));
        assert_eq!(MunicipalityCode::parse("13101"), Err("must be 6 digits"));
        assert_eq!(MunicipalityCode::parse("13101a"), Err("must be 6 digits"));
        assert!(MunicipalityCode::parse("481000").is_err());
        assert!(MunicipalityCode::parse("001007").is_err());
    }

    #[test]
    fn medical_institution_code_shape() {
        assert!(MedicalInstitutionCode::parse("1311234567").is_ok());
        assert!(MedicalInstitutionCode::parse("131123456").is_err());
        assert!(MedicalInstitutionCode::parse("1321234567").is_err());
        assert!(MedicalInstitutionCode::parse("4811234567").is_err());
        assert!(MedicalInstitutionCode::parse("13112345６7").is_err());
    }
}
