//! Platforms as `os/architecture[/variant]` (image-spec `image-index.md`), and the
//! host's, which is the default choice in a multi-platform index.

use serde_json::Value;
use std::fmt;

/// An image platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `windows`...
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`...
    pub architecture: String,
    /// `v7`, `v8`..., when given.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant,
        })
    }

    /// The platform this binary runs on, in Go's spelling.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// Reads `os`, `architecture` and `variant` from a config or descriptor platform.
    pub fn of_config(v: &Value) -> Platform {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Platform {
            os: s("os").unwrap_or_else(|| "unknown".into()),
            architecture: s("architecture").unwrap_or_else(|| "unknown".into()),
            variant: s("variant"),
        }
    }

    /// Whether `self`, as asked for, accepts `other`: a missing variant accepts any.
    pub fn accepts(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_accept() {
        let want = Platform::parse("linux/arm64").unwrap();
        assert!(want.accepts(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(
            !Platform::parse("linux/arm/v7")
                .unwrap()
                .accepts(&Platform::parse("linux/arm/v6").unwrap())
        );
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("linux/amd64/x/y").is_none());
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
    }
}
