//! Rule identities: the [`Rule`] enum (ids, placeholders, merge priority) and
//! the [`RuleSet`] bitset used to enable a subset of rules.

/// A detection rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// E-mail addresses, including obfuscated forms.
    Email,
    /// Phone numbers, international and national formats.
    Phone,
    /// IPv4 addresses (dotted quad).
    Ipv4,
    /// IPv6 addresses (full, compressed, IPv4-mapped).
    Ipv6,
    /// Payment card numbers (brand prefix + Luhn).
    CreditCard,
    /// International bank account numbers (length table + mod-97).
    Iban,
    /// US social security numbers.
    UsSsn,
    /// JSON web tokens.
    Jwt,
    /// Credentials after an HTTP auth scheme (`Bearer`, `Basic`, ...).
    BearerToken,
    /// Well-known API token formats and token-ish key=value pairs.
    ApiToken,
    /// Cloud provider keys (AWS, Azure, GCP, PEM private keys).
    CloudKey,
    /// Userinfo in URLs and DSNs.
    UrlCredential,
    /// Values of secret-ish keys (passwords, secrets, ...).
    SecretValue,
}

impl Rule {
    /// Every rule, in declaration order.
    pub const ALL: [Rule; 13] = [
        Rule::Email,
        Rule::Phone,
        Rule::Ipv4,
        Rule::Ipv6,
        Rule::CreditCard,
        Rule::Iban,
        Rule::UsSsn,
        Rule::Jwt,
        Rule::BearerToken,
        Rule::ApiToken,
        Rule::CloudKey,
        Rule::UrlCredential,
        Rule::SecretValue,
    ];

    /// Stable id used in config and audit: "email","phone","ipv4","ipv6",
    /// "credit-card","iban","us-ssn","jwt","bearer-token","api-token",
    /// "cloud-key","url-credential","secret-value".
    pub fn id(self) -> &'static str {
        match self {
            Rule::Email => "email",
            Rule::Phone => "phone",
            Rule::Ipv4 => "ipv4",
            Rule::Ipv6 => "ipv6",
            Rule::CreditCard => "credit-card",
            Rule::Iban => "iban",
            Rule::UsSsn => "us-ssn",
            Rule::Jwt => "jwt",
            Rule::BearerToken => "bearer-token",
            Rule::ApiToken => "api-token",
            Rule::CloudKey => "cloud-key",
            Rule::UrlCredential => "url-credential",
            Rule::SecretValue => "secret-value",
        }
    }

    /// The rule with the given stable id (exact, case-sensitive match).
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }

    /// Typed placeholder: `"<EMAIL>"`, `"<PHONE>"`, `"<IPV4>"`, `"<IPV6>"`,
    /// `"<CREDIT_CARD>"`, `"<IBAN>"`, `"<SSN>"`, `"<JWT>"`, `"<TOKEN>"`,
    /// `"<API_TOKEN>"`, `"<CLOUD_KEY>"`, `"<CREDENTIAL>"`, `"<SECRET>"`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Rule::Email => "<EMAIL>",
            Rule::Phone => "<PHONE>",
            Rule::Ipv4 => "<IPV4>",
            Rule::Ipv6 => "<IPV6>",
            Rule::CreditCard => "<CREDIT_CARD>",
            Rule::Iban => "<IBAN>",
            Rule::UsSsn => "<SSN>",
            Rule::Jwt => "<JWT>",
            Rule::BearerToken => "<TOKEN>",
            Rule::ApiToken => "<API_TOKEN>",
            Rule::CloudKey => "<CLOUD_KEY>",
            Rule::UrlCredential => "<CREDENTIAL>",
            Rule::SecretValue => "<SECRET>",
        }
    }

    /// Merge priority for overlapping matches of equal length (higher wins):
    /// url-credential > jwt > bearer-token > cloud-key > api-token >
    /// secret-value > credit-card > iban > email > us-ssn > phone > ipv6 > ipv4.
    pub fn priority(self) -> u8 {
        match self {
            Rule::UrlCredential => 13,
            Rule::Jwt => 12,
            Rule::BearerToken => 11,
            Rule::CloudKey => 10,
            Rule::ApiToken => 9,
            Rule::SecretValue => 8,
            Rule::CreditCard => 7,
            Rule::Iban => 6,
            Rule::Email => 5,
            Rule::UsSsn => 4,
            Rule::Phone => 3,
            Rule::Ipv6 => 2,
            Rule::Ipv4 => 1,
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl core::fmt::Display for Rule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.id())
    }
}

/// A set of enabled rules (bitset). Default = all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleSet(u32);

impl RuleSet {
    /// Every rule enabled.
    pub fn all() -> Self {
        Rule::ALL.into_iter().fold(RuleSet(0), RuleSet::with)
    }

    /// No rule enabled.
    pub fn empty() -> Self {
        RuleSet(0)
    }

    /// This set plus `r`.
    #[must_use]
    pub fn with(self, r: Rule) -> Self {
        RuleSet(self.0 | r.bit())
    }

    /// This set minus `r`.
    #[must_use]
    pub fn without(self, r: Rule) -> Self {
        RuleSet(self.0 & !r.bit())
    }

    /// Whether `r` is enabled.
    pub fn contains(self, r: Rule) -> bool {
        self.0 & r.bit() != 0
    }

    /// Whether no rule is enabled.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The enabled rules, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Rule> {
        Rule::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// Parse a comma-separated list of rule ids ("email,phone") or "all".
    /// Whitespace around ids is ignored; an empty list is the empty set.
    /// `Err` names the unknown id.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut set = RuleSet::empty();
        for part in list.split(',') {
            let id = part.trim();
            if id.is_empty() {
                continue;
            }
            if id == "all" {
                set = RuleSet::all();
                continue;
            }
            match Rule::from_id(id) {
                Some(r) => set = set.with(r),
                None => return Err(format!("unknown rule id: {id:?}")),
            }
        }
        Ok(set)
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_id(r.id()), Some(r));
            assert!(r.placeholder().starts_with('<') && r.placeholder().ends_with('>'));
        }
        assert_eq!(Rule::from_id("nope"), None);
    }

    #[test]
    fn parse_sets() {
        let s = RuleSet::parse("email, phone").unwrap();
        assert!(s.contains(Rule::Email) && s.contains(Rule::Phone));
        assert!(!s.contains(Rule::Ipv4));
        assert_eq!(RuleSet::parse("all").unwrap(), RuleSet::all());
        assert_eq!(RuleSet::default(), RuleSet::all());
        let err = RuleSet::parse("email,bogus").unwrap_err();
        assert!(err.contains("bogus"));
        assert!(RuleSet::parse("").unwrap().is_empty());
        assert_eq!(RuleSet::all().iter().count(), 13);
        assert!(!RuleSet::all().without(Rule::Jwt).contains(Rule::Jwt));
    }
}
