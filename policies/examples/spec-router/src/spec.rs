//! The runner spec a job writes in its `runs-on` labels, and its parser. Free of any
//! WebAssembly binding, so that it is tested natively (with proptest) too.
//!
//! ```text
//! spec   = "runway/" pair *( "/" pair )        e.g. runway/cpu=4/ram=16/family=m7
//! pair   = key "=" value
//! key    = "cpu" | "ram" | "family" | "arch" | "disk" | "spot"
//! ```
//!
//! | key | value | meaning |
//! |-----|-------|---------|
//! | `cpu` (`vcpu`) | whole number, 1–4096 | at least this many vCPUs |
//! | `ram` (`mem`, `memory`) | GiB, `16`, `0.5`, `16gb`, `16GiB` | at least this much memory |
//! | `family` | instance family prefixes joined by `+`: `m7`, `c7g+m7g` | the type's family (the part before the dot) starts with one of them |
//! | `arch` | `x64` (`amd64`, `x86_64`) or `arm64` (`aarch64`) | the CPU architecture |
//! | `disk` | GiB, 1–65536 (`100`, `100gb`) | at least this much root disk |
//! | `spot` | `true`/`false` (`yes`/`no`) | the market: spot, or on-demand |
//!
//! Keys and values are case-insensitive; pairs come in any order; an empty segment (a
//! trailing `/`) is skipped. A key given twice, an unknown key, a pair without `=` or a value
//! out of range makes the spec malformed: the router then leaves the job alone and says why.

use core::fmt;

/// Labels starting with this (case-insensitive) are runner specs.
pub const PREFIX: &str = "runway/";

/// The keys, for error messages.
pub const KEYS: &str = "cpu, ram, family, arch, disk, spot";

const MAX_CPU: u32 = 4096;
const MAX_GIB: u32 = 65_536;

/// A CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arch {
    X64,
    Arm64,
}

impl Arch {
    /// The architecture a label or spec value names (`x64`, `amd64`, `arm64`, …).
    pub fn from_name(name: &str) -> Option<Arch> {
        match name.trim().to_ascii_lowercase().as_str() {
            "x64" | "amd64" | "x86_64" | "x86-64" => Some(Arch::X64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X64 => "x64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// What a spec asks for. Every field is optional: `runway/spot=false` only asks for the
/// on-demand market.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Spec {
    /// At least this many vCPUs.
    pub cpu: Option<u32>,
    /// At least this much memory, in MiB (the spec writes GiB).
    pub ram_mib: Option<u32>,
    /// Family prefixes, lower case; empty: any family.
    pub families: Vec<String>,
    pub arch: Option<Arch>,
    /// At least this much root disk, in GiB.
    pub disk_gib: Option<u32>,
    /// `Some(true)`: spot; `Some(false)`: on-demand.
    pub spot: Option<bool>,
}

/// Why a spec label could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// `runway/` followed by nothing.
    Empty,
    /// A segment without `=`.
    NotAPair(String),
    UnknownKey(String),
    Repeated(String),
    /// A key with a value it does not take; the message says what it takes.
    BadValue {
        key: &'static str,
        value: String,
        wants: &'static str,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Empty => write!(f, "it names nothing after {PREFIX}"),
            SpecError::NotAPair(segment) => {
                write!(f, "`{segment}` is not a key=value pair")
            }
            SpecError::UnknownKey(key) => {
                write!(f, "`{key}` is not a key (keys: {KEYS})")
            }
            SpecError::Repeated(key) => write!(f, "`{key}` is given twice"),
            SpecError::BadValue { key, value, wants } => {
                write!(f, "{key} wants {wants}, not `{value}`")
            }
        }
    }
}

/// Whether `label` is a runner spec (starts with `runway/`, any case).
pub fn is_spec(label: &str) -> bool {
    let label = label.trim();
    label
        .get(..PREFIX.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(PREFIX))
}

/// Reads a spec label; `label` must satisfy [`is_spec`].
pub fn parse(label: &str) -> Result<Spec, SpecError> {
    let label = label.trim();
    let body = label.get(PREFIX.len()..).unwrap_or_default();
    let mut spec = Spec::default();
    let mut seen: Vec<&'static str> = Vec::new();
    for segment in body.split('/') {
        let segment = segment.trim();
        if segment.is_empty() {
            continue;
        }
        let Some((key, value)) = segment.split_once('=') else {
            return Err(SpecError::NotAPair(segment.to_string()));
        };
        let value = value.trim();
        let key = match key.trim().to_ascii_lowercase().as_str() {
            "cpu" | "cpus" | "vcpu" | "vcpus" => "cpu",
            "ram" | "mem" | "memory" => "ram",
            "family" | "families" => "family",
            "arch" => "arch",
            "disk" => "disk",
            "spot" => "spot",
            _ => return Err(SpecError::UnknownKey(key.trim().to_string())),
        };
        if seen.contains(&key) {
            return Err(SpecError::Repeated(key.to_string()));
        }
        seen.push(key);
        let bad = |wants: &'static str| SpecError::BadValue {
            key,
            value: value.to_string(),
            wants,
        };
        match key {
            "cpu" => {
                spec.cpu = Some(
                    parse_whole(value)
                        .filter(|n| (1..=MAX_CPU).contains(n))
                        .ok_or_else(|| bad("a whole number of vCPUs from 1 to 4096"))?,
                )
            }
            "ram" => {
                spec.ram_mib = Some(
                    parse_gib_as_mib(strip_gib(value))
                        .ok_or_else(|| bad("GiB above 0 and at most 65536, such as 16 or 0.5"))?,
                )
            }
            "family" => {
                let mut families = Vec::new();
                for family in value.split('+') {
                    let family = family.trim().to_ascii_lowercase();
                    let valid = !family.is_empty()
                        && family
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                    if !valid {
                        return Err(bad(
                            "instance family prefixes joined by +, such as m7 or c7g+m7g",
                        ));
                    }
                    if !families.contains(&family) {
                        families.push(family);
                    }
                }
                spec.families = families;
            }
            "arch" => spec.arch = Some(Arch::from_name(value).ok_or_else(|| bad("x64 or arm64"))?),
            "disk" => {
                spec.disk_gib = Some(
                    parse_whole(strip_gib(value))
                        .filter(|n| (1..=MAX_GIB).contains(n))
                        .ok_or_else(|| bad("a whole number of GiB from 1 to 65536"))?,
                )
            }
            _ => {
                spec.spot = Some(match value.to_ascii_lowercase().as_str() {
                    "true" | "yes" => true,
                    "false" | "no" => false,
                    _ => return Err(bad("true or false")),
                })
            }
        }
    }
    if seen.is_empty() {
        return Err(SpecError::Empty);
    }
    Ok(spec)
}

/// A whole number of at most 9 digits (no sign, no separators).
fn parse_whole(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `16gb`, `16GiB`, `16g` → `16`.
fn strip_gib(value: &str) -> &str {
    for suffix in ["gib", "gb", "g"] {
        let Some(cut) = value.len().checked_sub(suffix.len()) else {
            continue;
        };
        if cut > 0 && value.is_char_boundary(cut) && value[cut..].eq_ignore_ascii_case(suffix) {
            return value[..cut].trim_end();
        }
    }
    value
}

/// GiB as a whole or decimal number (at most 3 decimals) → MiB, rounded up; above 0 and at
/// most 65536 GiB.
fn parse_gib_as_mib(text: &str) -> Option<u32> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = if whole.is_empty() && !fraction.is_empty() {
        0
    } else {
        parse_whole(whole)?
    };
    let thousandths = match fraction.len() {
        0 => 0,
        n => parse_whole(fraction)? * 10u32.pow(3 - n as u32),
    };
    let mib = u64::from(whole) * 1024 + (u64::from(thousandths) * 1024).div_ceil(1000);
    (mib > 0 && mib <= u64::from(MAX_GIB) * 1024).then_some(mib as u32)
}

/// MiB as GiB for reasons: `16`, `0.5`.
pub fn gib(mib: u32) -> String {
    if mib.is_multiple_of(1024) {
        format!("{}", mib / 1024)
    } else {
        let tenths = (u64::from(mib) * 10).div_ceil(1024);
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

impl fmt::Display for Spec {
    /// What was asked, for reasons: `cpu>=4 ram>=16GiB family=m7 arch=arm64 disk>=100GiB spot`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(cpu) = self.cpu {
            parts.push(format!("cpu>={cpu}"));
        }
        if let Some(mib) = self.ram_mib {
            parts.push(format!("ram>={}GiB", gib(mib)));
        }
        if !self.families.is_empty() {
            parts.push(format!("family={}", self.families.join("+")));
        }
        if let Some(arch) = self.arch {
            parts.push(format!("arch={}", arch.name()));
        }
        if let Some(disk) = self.disk_gib {
            parts.push(format!("disk>={disk}GiB"));
        }
        match self.spot {
            Some(true) => parts.push("spot".to_string()),
            Some(false) => parts.push("on-demand".to_string()),
            None => {}
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_documented_forms() {
        let spec = parse("runway/cpu=4/ram=16/family=m7").unwrap();
        assert_eq!(spec.cpu, Some(4));
        assert_eq!(spec.ram_mib, Some(16 * 1024));
        assert_eq!(spec.families, ["m7"]);
        let spec =
            parse("Runway/Family=C7G+m7g/ARCH=aarch64/disk=100GB/spot=No/mem=0.5g/").unwrap();
        assert_eq!(spec.families, ["c7g", "m7g"]);
        assert_eq!(spec.arch, Some(Arch::Arm64));
        assert_eq!(spec.disk_gib, Some(100));
        assert_eq!(spec.spot, Some(false));
        assert_eq!(spec.ram_mib, Some(512));
        assert_eq!(
            spec.to_string(),
            "ram>=0.5GiB family=c7g+m7g arch=arm64 disk>=100GiB on-demand"
        );
        assert_eq!(parse("runway/ram=16GiB").unwrap().ram_mib, Some(16384));
        assert_eq!(parse("runway/ram=1.25").unwrap().ram_mib, Some(1280));
    }

    #[test]
    fn malformed_specs_say_why() {
        let error = |label: &str| parse(label).unwrap_err().to_string();
        assert_eq!(error("runway/"), "it names nothing after runway/");
        assert_eq!(error("runway/cpu"), "`cpu` is not a key=value pair");
        assert_eq!(
            error("runway/gpu=1"),
            "`gpu` is not a key (keys: cpu, ram, family, arch, disk, spot)"
        );
        assert_eq!(error("runway/cpu=2/vcpu=4"), "`cpu` is given twice");
        assert_eq!(
            error("runway/cpu=four"),
            "cpu wants a whole number of vCPUs from 1 to 4096, not `four`"
        );
        assert!(error("runway/cpu=0").contains("from 1 to 4096"));
        assert!(error("runway/cpu=-1").contains("from 1 to 4096"));
        assert!(error("runway/ram=0").contains("above 0"));
        assert!(error("runway/ram=1.2345").contains("above 0"));
        assert!(error("runway/ram=99999999").contains("at most 65536"));
        assert!(error("runway/arch=sparc").contains("x64 or arm64"));
        assert!(error("runway/family=m7+").contains("prefixes joined by +"));
        assert!(error("runway/family=m7.large").contains("prefixes joined by +"));
        assert!(error("runway/spot=maybe").contains("true or false"));
        assert!(error("runway/disk=1.5").contains("whole number of GiB"));
    }

    #[test]
    fn only_runway_slash_labels_are_specs() {
        assert!(is_spec("runway/cpu=4"));
        assert!(is_spec(" RUNWAY/cpu=4"));
        assert!(!is_spec("runway"));
        assert!(!is_spec("runway-large"));
        assert!(!is_spec("linux"));
        assert!(!is_spec("rünway/cpu=4"));
    }

    fn arb_spec() -> impl Strategy<Value = Spec> {
        (
            proptest::option::of(1u32..=4096),
            // Whole and half GiB render exactly.
            proptest::option::of((1u32..=2 * 65_536).prop_map(|halves| halves * 512)),
            proptest::collection::vec("[a-z][a-z0-9-]{0,6}", 0..3),
            proptest::option::of(prop_oneof![Just(Arch::X64), Just(Arch::Arm64)]),
            proptest::option::of(1u32..=65_536),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(cpu, ram_mib, families, arch, disk_gib, spot)| {
                let mut unique = Vec::new();
                for family in families {
                    if !unique.contains(&family) {
                        unique.push(family);
                    }
                }
                Spec {
                    cpu,
                    ram_mib,
                    families: unique,
                    arch,
                    disk_gib,
                    spot,
                }
            })
            .prop_filter("a spec names something", |spec| *spec != Spec::default())
    }

    /// The spec written as a label, its pairs in `order` and letters in random case.
    fn render(spec: &Spec, order: &[usize], upper: &[bool]) -> String {
        let mut pairs = Vec::new();
        if let Some(cpu) = spec.cpu {
            pairs.push(format!("cpu={cpu}"));
        }
        if let Some(mib) = spec.ram_mib {
            pairs.push(format!("ram={}", gib(mib)));
        }
        if !spec.families.is_empty() {
            pairs.push(format!("family={}", spec.families.join("+")));
        }
        if let Some(arch) = spec.arch {
            pairs.push(format!("arch={}", arch.name()));
        }
        if let Some(disk) = spec.disk_gib {
            pairs.push(format!("disk={disk}gb"));
        }
        if let Some(spot) = spec.spot {
            pairs.push(format!("spot={spot}"));
        }
        let mut ordered: Vec<(usize, String)> = pairs
            .into_iter()
            .enumerate()
            .map(|(i, pair)| (order.get(i).copied().unwrap_or(i), pair))
            .collect();
        ordered.sort();
        let body: Vec<String> = ordered.into_iter().map(|(_, pair)| pair).collect();
        format!("runway/{}", body.join("/"))
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if upper.get(i).copied().unwrap_or(false) {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn any_label_parses_or_fails_without_panicking(label in "\\PC{0,60}") {
            if is_spec(&label) {
                let _ = parse(&label);
            }
        }

        #[test]
        fn specs_near_the_grammar_parse_or_fail_without_panicking(
            body in "[a-zA-Z0-9=/+.\\- ]{0,40}",
        ) {
            let label = format!("runway/{body}");
            if let Ok(spec) = parse(&label) {
                prop_assert!(spec != Spec::default());
            }
        }

        #[test]
        fn a_written_spec_reads_back_in_any_order_and_case(
            spec in arb_spec(),
            order in proptest::collection::vec(0usize..100, 6),
            upper in proptest::collection::vec(any::<bool>(), 0..120),
        ) {
            let label = render(&spec, &order, &upper);
            prop_assert!(is_spec(&label));
            prop_assert_eq!(parse(&label), Ok(spec));
        }

        #[test]
        fn a_repeated_key_is_refused(spec in arb_spec(), extra in 1u32..64) {
            let label = format!("{}/cpu={extra}", render(&spec, &[], &[]));
            let parsed = parse(&label);
            if spec.cpu.is_some() {
                prop_assert_eq!(parsed, Err(SpecError::Repeated("cpu".into())));
            } else {
                prop_assert_eq!(parsed.map(|s| s.cpu), Ok(Some(extra)));
            }
        }
    }
}
