//! A small built-in catalog of common EC2 instance types: vCPUs, memory and architecture.
//!
//! General purpose (m, 4 GiB per vCPU), compute optimised (c, 2 GiB per vCPU) and memory
//! optimised (r, 8 GiB per vCPU) families of the 6th, 7th and 8th generations, in the sizes
//! `medium` (1 vCPU; Graviton and 7th-generation AMD only) to `16xlarge` (64 vCPUs), and the
//! burstable t3, t3a and t4g. The `-flex` families go up to `8xlarge`. Larger sizes and
//! `metal` are left out: a pool that wants them lists them in its own `instance_types`, and a
//! type the catalog does not know is never chosen for a spec.
//!
//! The order is the tie-break between types of the same vCPUs and memory: within one shape,
//! the cheaper family first by Linux on-demand price per vCPU (us-east-1: Graviton, then AMD
//! 6th generation, Graviton 4, Intel (-flex, 6i, 7i), AMD 7th generation).

use crate::spec::Arch;

/// One instance type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceType {
    pub name: String,
    pub vcpus: u32,
    pub mem_mib: u32,
    pub arch: Arch,
    /// t3, t3a, t4g: CPU credits; chosen only when a spec's family names them.
    pub burstable: bool,
    /// Its place in the catalog, the tie-break between equal shapes.
    pub rank: usize,
}

impl InstanceType {
    /// The family: the name before the dot (`m7i-flex` of `m7i-flex.large`).
    pub fn family(&self) -> &str {
        self.name.split('.').next().unwrap_or_default()
    }
}

struct Family {
    name: &'static str,
    arch: Arch,
    gib_per_vcpu: u32,
    /// Whether the family has a `medium` (1 vCPU) size.
    medium: bool,
    /// The largest size listed, in vCPUs.
    max_vcpus: u32,
}

const fn family(name: &'static str, arch: Arch, gib_per_vcpu: u32, medium: bool) -> Family {
    Family {
        name,
        arch,
        gib_per_vcpu,
        medium,
        max_vcpus: 64,
    }
}

const fn flex(name: &'static str, gib_per_vcpu: u32) -> Family {
    Family {
        name,
        arch: Arch::X64,
        gib_per_vcpu,
        medium: false,
        max_vcpus: 32,
    }
}

use Arch::{Arm64, X64};

/// Fixed-ratio families, cheapest per vCPU first within each ratio.
const FAMILIES: &[Family] = &[
    family("c6g", Arm64, 2, true),
    family("c7g", Arm64, 2, true),
    family("c6a", X64, 2, false),
    family("c8g", Arm64, 2, true),
    flex("c7i-flex", 2),
    family("c6i", X64, 2, false),
    family("c7i", X64, 2, false),
    family("c7a", X64, 2, true),
    family("m6g", Arm64, 4, true),
    family("m7g", Arm64, 4, true),
    family("m6a", X64, 4, false),
    family("m8g", Arm64, 4, true),
    flex("m7i-flex", 4),
    family("m6i", X64, 4, false),
    family("m7i", X64, 4, false),
    family("m7a", X64, 4, true),
    family("r6g", Arm64, 8, true),
    family("r7g", Arm64, 8, true),
    family("r6a", X64, 8, false),
    family("r8g", Arm64, 8, true),
    family("r6i", X64, 8, false),
    family("r7i", X64, 8, false),
    family("r7a", X64, 8, true),
];

/// Size names and their vCPUs in the fixed-ratio families.
const SIZES: &[(&str, u32)] = &[
    ("medium", 1),
    ("large", 2),
    ("xlarge", 4),
    ("2xlarge", 8),
    ("4xlarge", 16),
    ("8xlarge", 32),
    ("12xlarge", 48),
    ("16xlarge", 64),
];

/// Burstable families (same shapes for each), cheapest first.
const BURSTABLE: &[(&str, Arch)] = &[("t4g", Arm64), ("t3a", X64), ("t3", X64)];

/// Burstable sizes: vCPUs and MiB.
const BURSTABLE_SIZES: &[(&str, u32, u32)] = &[
    ("nano", 2, 512),
    ("micro", 2, 1024),
    ("small", 2, 2048),
    ("medium", 2, 4096),
    ("large", 2, 8192),
    ("xlarge", 4, 16384),
    ("2xlarge", 8, 32768),
];

/// Every type in the catalog, in catalog order.
pub fn all() -> Vec<InstanceType> {
    let mut types = Vec::new();
    for (arch_family, arch) in BURSTABLE {
        for (size, vcpus, mem_mib) in BURSTABLE_SIZES {
            types.push((
                format!("{arch_family}.{size}"),
                *vcpus,
                *mem_mib,
                *arch,
                true,
            ));
        }
    }
    for family in FAMILIES {
        for (size, vcpus) in SIZES {
            if (*vcpus == 1 && !family.medium) || *vcpus > family.max_vcpus {
                continue;
            }
            types.push((
                format!("{}.{size}", family.name),
                *vcpus,
                vcpus * family.gib_per_vcpu * 1024,
                family.arch,
                false,
            ));
        }
    }
    types
        .into_iter()
        .enumerate()
        .map(
            |(rank, (name, vcpus, mem_mib, arch, burstable))| InstanceType {
                name,
                vcpus,
                mem_mib,
                arch,
                burstable,
                rank,
            },
        )
        .collect()
}

/// The catalog entry of `name` (case-insensitive).
pub fn lookup(name: &str) -> Option<InstanceType> {
    let name = name.trim();
    all()
        .into_iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(name: &str) -> (u32, u32, Arch) {
        let t = lookup(name).unwrap_or_else(|| panic!("{name} in the catalog"));
        (t.vcpus, t.mem_mib / 1024, t.arch)
    }

    /// Spot checks against the EC2 documentation's instance type tables.
    #[test]
    fn shapes_match_ec2() {
        assert_eq!(get("m7i.large"), (2, 8, X64));
        assert_eq!(get("m7g.medium"), (1, 4, Arm64));
        assert_eq!(get("c7g.xlarge"), (4, 8, Arm64));
        assert_eq!(get("c6i.4xlarge"), (16, 32, X64));
        assert_eq!(get("r7a.medium"), (1, 8, X64));
        assert_eq!(get("r6g.16xlarge"), (64, 512, Arm64));
        assert_eq!(get("m7i-flex.8xlarge"), (32, 128, X64));
        assert_eq!(get("c8g.12xlarge"), (48, 96, Arm64));
        assert_eq!(get("t3.medium"), (2, 4, X64));
        assert_eq!(get("t4g.2xlarge"), (8, 32, Arm64));
        assert_eq!(lookup("t3.nano").map(|t| t.mem_mib), Some(512));
        // Sizes the families do not have.
        for missing in [
            "m7i.medium",
            "c6i.medium",
            "m7i-flex.16xlarge",
            "p5.48xlarge",
        ] {
            assert_eq!(lookup(missing), None, "{missing}");
        }
    }

    #[test]
    fn names_are_unique_and_families_parse() {
        let types = all();
        for (i, t) in types.iter().enumerate() {
            assert_eq!(t.rank, i);
            assert!(!types[..i].iter().any(|u| u.name == t.name), "{}", t.name);
            assert!(!t.family().is_empty());
        }
        assert_eq!(lookup("M7I-FLEX.large").unwrap().family(), "m7i-flex");
    }
}
