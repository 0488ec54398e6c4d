//! Libraries a C library opens by name at run time (`dlopen`), which no ELF header
//! names, so a static reading of `DT_NEEDED` never sees them. The built-in list:
//!
//! - glibc's NSS modules: `libnss_SERVICE.so.2` for every service a database line of
//!   `/etc/nsswitch.conf` names (`passwd: files systemd` -> `libnss_files.so.2`,
//!   `libnss_systemd.so.2`); glibc loads them for `getpwnam`, `getaddrinfo` and the like
//!   (glibc `nss/nss_module.c`, `module_load`). Since glibc 2.34 `files` and `dns` are
//!   built in, but the stubs stay and an older glibc needs them.
//! - `libgcc_s.so.1`, which glibc opens to unwind a thread in `pthread_cancel` and
//!   `pthread_exit` (glibc `sysdeps/generic/unwind-link.c`, `LIBGCC_S_SO`).
//! - gconv modules are not on this list: `iconv` finds them through
//!   `gconv-modules`, not by a library name; the closure's `gconv` preset keeps them.
//!
//! A policy adds names with `[runtime] libraries = ["libfoo.so.1"]`. They are searched
//! the way `dlopen` from the C library searches (`LD_LIBRARY_PATH`, `ld.so.conf`, the
//! system folders). Only a glibc program's load needs them: musl has no NSS and
//! unwinds without `libgcc_s`. A name the input lacks is not an error (glibc skips an
//! NSS service it cannot load); one the input has and a policy deletes is.

use super::loader::Loader;
use crate::layer::fs::{Fs, resolve};

/// The libraries glibc opens by name whatever its configuration.
pub const GLIBC_ALWAYS: &[&str] = &["libgcc_s.so.1"];

/// glibc's C library, whose presence in a load brings the runtime libraries.
pub const GLIBC_SONAME: &[u8] = b"libc.so.6";

/// NSS's configuration file.
pub const NSSWITCH: &[u8] = b"etc/nsswitch.conf";

/// The services `/etc/nsswitch.conf` names, in order, each once: every word after a
/// database's `:` but the `[STATUS=action]` groups (nsswitch.conf(5)).
pub fn nss_services(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let Some((_, services)) = line.split_once(':') else {
            continue;
        };
        let mut in_action = false;
        for w in services.split_whitespace() {
            if w.starts_with('[') {
                in_action = !w.ends_with(']');
                continue;
            }
            if in_action {
                in_action = !w.ends_with(']');
                continue;
            }
            let ok = w
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if ok && !out.iter().any(|s| s == w) {
                out.push(w.to_string());
            }
        }
    }
    out
}

/// The names glibc may open at run time in this image: the NSS modules of its
/// `nsswitch.conf`, [`GLIBC_ALWAYS`], then `extra` (the policy's), each once.
pub fn glibc_names(fs: &dyn Fs, extra: &[String]) -> Vec<Vec<u8>> {
    let text = resolve(fs, NSSWITCH)
        .and_then(|p| fs.open(&p))
        .and_then(|f| f.head(1 << 16).ok())
        .unwrap_or_default();
    let mut names: Vec<Vec<u8>> = nss_services(&String::from_utf8_lossy(&text))
        .into_iter()
        .map(|s| format!("libnss_{s}.so.2").into_bytes())
        .collect();
    for n in GLIBC_ALWAYS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        if !names.iter().any(|x| x == n.as_bytes()) {
            names.push(n.as_bytes().to_vec());
        }
    }
    names
}

/// Each runtime library of the glibc at `libc` (a normalised path), and where `dlopen`
/// from it finds the library (`None`: nowhere).
pub fn resolve_all(
    fs: &dyn Fs,
    loader: &Loader,
    libc: &[u8],
    extra: &[String],
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let Some(info) = loader.elf(libc) else {
        return Vec::new();
    };
    glibc_names(fs, extra)
        .into_iter()
        .map(|n| {
            let at = loader.find(&n, libc, &info);
            (n, at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsswitch_services_skip_actions_and_comments() {
        let text = "# comment: files\npasswd:  files systemd\ngroup: files [SUCCESS=merge] systemd\n\
                    hosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n\
                    networks: files # dns\nbad line\nshadow: [ !UNAVAIL=return ] files\n";
        assert_eq!(
            nss_services(text),
            ["files", "systemd", "mdns4_minimal", "dns", "myhostname"]
        );
    }
}
