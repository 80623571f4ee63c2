// SPDX-License-Identifier: Apache-2.0 OR MIT
//! One tree compiled in both views, and the comparison of two such trees: the classified
//! changes plus the rules `check` applies, run on the new tree.

use crate::abi::Abi;
use crate::diff::{self, Change, Views};
use crate::error::Error;
use crate::extract::{Extractor, View};
use crate::invariants::{self, Check};
use crate::model::Snapshot;
use crate::reference;
use crate::report::{HeaderSummary, Report};
use crate::tree::PublicHeaders;
use std::collections::BTreeMap;
use std::path::Path;

/// The latest guest interface version of a tree (`__XEN_LATEST_INTERFACE_VERSION__`),
/// if its headers define one.
pub fn latest_interface_version(tools: &BTreeMap<Abi, Snapshot>) -> Option<i128> {
    tools
        .values()
        .find_map(|s| s.constants.get("__XEN_LATEST_INTERFACE_VERSION__"))
        .map(|c| c.value)
}

/// The headers each ABI's snapshot skipped.
fn skipped(snapshots: &BTreeMap<Abi, Snapshot>) -> BTreeMap<Abi, Vec<crate::model::SkippedHeader>> {
    snapshots
        .iter()
        .map(|(abi, s)| (*abi, s.skipped.clone()))
        .collect()
}

/// A tree compiled for the tools and as a guest at its own latest interface version.
#[derive(Debug)]
pub struct Compiled {
    /// The path as given.
    pub name: String,
    /// The located headers.
    pub headers: PublicHeaders,
    /// The tools view.
    pub tools: BTreeMap<Abi, Snapshot>,
    /// Its latest interface version.
    pub latest: Option<i128>,
    /// The guest view at `latest`.
    pub guest: BTreeMap<Abi, Snapshot>,
}

impl Compiled {
    /// Locates and compiles a tree (`role` names it in errors).
    pub fn new(extractor: &Extractor, path: &Path, role: &'static str) -> Result<Self, Error> {
        let headers = PublicHeaders::locate(path, role)?;
        let tools = extractor.extract(&headers, View::Tools)?;
        let latest = latest_interface_version(&tools);
        let guest = extractor.extract_without(&headers, View::Guest(latest), &skipped(&tools))?;
        Ok(Compiled {
            name: path.display().to_string(),
            headers,
            tools,
            latest,
            guest,
        })
    }

    /// The guest view at `version`: the own one when it is the tree's latest.
    pub fn guest_at(
        &self,
        extractor: &Extractor,
        version: Option<i128>,
    ) -> Result<std::borrow::Cow<'_, BTreeMap<Abi, Snapshot>>, Error> {
        if version == self.latest {
            Ok(std::borrow::Cow::Borrowed(&self.guest))
        } else {
            Ok(std::borrow::Cow::Owned(extractor.extract_without(
                &self.headers,
                View::Guest(version),
                &skipped(&self.tools),
            )?))
        }
    }

    /// The views for a diff against an older tree whose latest version is `version`.
    pub fn views<'a>(&'a self, guest: &'a BTreeMap<Abi, Snapshot>) -> Views<'a> {
        Views {
            tools: &self.tools,
            guest,
        }
    }
}

/// The `reference.size` rules of a tree, when it is a whole tree that has the file.
/// `required` makes a missing file an error (for `check`); otherwise it is skipped.
pub fn reference_checks(
    headers: &PublicHeaders,
    tools: &BTreeMap<Abi, Snapshot>,
    required: bool,
) -> Result<Vec<Check>, Error> {
    let Some(path) = headers.reference_size() else {
        if required {
            return Err(Error::Reference {
                path: headers.public.clone(),
                reason: "is a public headers folder, so it has no \
                         tools/include/xen-foreign/reference.size; pass the top of the Xen \
                         tree, or --no-reference-size"
                    .into(),
            });
        }
        return Ok(Vec::new());
    };
    if !required && !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Reference {
        path: path.clone(),
        reason: format!(
            "cannot read it ({e}); pass --no-reference-size to check the headers alone"
        ),
    })?;
    let rows = reference::parse(&text).map_err(|reason| Error::Reference { path, reason })?;
    Ok(reference::compare(&rows, tools))
}

/// Compares `new` with `old`: the changes, then the rules of `check` on the new tree and
/// whether the old tree's headers still compile.
pub fn compare(extractor: &Extractor, old: &Compiled, new: &Compiled) -> Result<Report, Error> {
    let new_guest = new.guest_at(extractor, old.latest)?;
    let (ov, nv) = (old.views(&old.guest), new.views(&new_guest));
    let changes: Vec<Change> = diff::diff(ov, nv);
    let mut checks = invariants::check_all(&new.tools);
    checks.extend(reference_checks(&new.headers, &new.tools, false)?);
    checks.extend(diff::header_checks(ov, nv));
    let mut headers = HeaderSummary::of(&old.name, &old.tools);
    headers.extend(HeaderSummary::of(&new.name, &new.tools));
    Ok(Report {
        command: "diff".into(),
        trees: vec![old.name.clone(), new.name.clone()],
        headers,
        changes,
        checks,
    })
}
