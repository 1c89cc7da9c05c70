//! The one list of chapters. Routes, the sidebar, URL queries, the CLI's flags and
//! `replab run` dispatch, the keys of `results.json` and the not-built page all come
//! from here: adding a chapter means one entry below and one `lab/` module.

use super::chapter::Chapter;
use super::error::LabError;

/// An exercise: a labelled button that sets parameters, then runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exercise {
    /// Button text.
    pub label: &'static str,
    /// Parameters it sets, as `(name, value)`.
    pub set: &'static [(&'static str, &'static str)],
}

/// One chapter of the walkthrough.
#[derive(Clone, Copy)]
pub struct ChapterInfo {
    /// Route, CLI name and `results.json` key, e.g. `supervised`.
    pub slug: &'static str,
    /// The sidebar and page title.
    pub title: &'static str,
    /// Parameters the chapter's form shows (the dataset and backend always show).
    pub params: &'static [&'static str],
    /// Where the chapter's defaults differ from the shared ones.
    pub defaults: &'static [(&'static str, &'static str)],
    /// The exercises, in order.
    pub exercises: &'static [Exercise],
    /// Title of the main loss chart.
    pub loss_title: &'static str,
    /// Names of what the training loss monitors beside itself, for a live chart.
    pub monitors: &'static [&'static str],
    /// Builds the chapter's runner; `None` while it is not built, or for a chapter
    /// with nothing to run (the data chapter).
    pub make: Option<fn() -> Box<dyn Chapter>>,
    /// Whether the chapter has a page today.
    pub built: bool,
}

impl std::fmt::Debug for ChapterInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChapterInfo")
            .field("slug", &self.slug)
            .field("built", &self.built)
            .finish()
    }
}

impl ChapterInfo {
    /// Whether `replab run` and the page's Run button can run it.
    pub fn runnable(&self) -> bool {
        self.make.is_some()
    }
}

/// The parameters of a chapter that trains an encoder on the kept classes.
pub const TRAINING: &[&str] = &[
    "epochs",
    "limit",
    "seed",
    "batch_size",
    "lr",
    "labeled_ratio",
    "held_out_ratio",
    "split_seed",
    "backend",
];

/// The parameters of an autoencoder chapter.
pub const AUTOENCODING: &[&str] = &[
    "epochs",
    "limit",
    "seed",
    "batch_size",
    "lr",
    "latent_dim",
    "labeled_ratio",
    "held_out_ratio",
    "split_seed",
    "backend",
];

const fn planned(slug: &'static str, title: &'static str) -> ChapterInfo {
    ChapterInfo {
        slug,
        title,
        params: &[],
        defaults: &[],
        exercises: &[],
        loss_title: "",
        monitors: &[],
        make: None,
        built: false,
    }
}

/// Every chapter, in the order of the notebook.
pub const CHAPTERS: &[ChapterInfo] = &[
    super::data::INFO,
    super::supervised::INFO,
    super::supcon::INFO,
    super::pca::INFO,
    super::linear_ae::INFO,
    super::mlp_ae::INFO,
    super::conv_ae::INFO,
    super::simclr::INFO,
    super::dino::INFO,
    super::clip::INFO,
    planned("board", "Comparison board"),
];

/// Look a chapter up by slug; the error lists the valid ones.
pub fn chapter(slug: &str) -> Result<&'static ChapterInfo, LabError> {
    CHAPTERS.iter().find(|c| c.slug == slug).ok_or_else(|| {
        LabError::Params(format!(
            "no chapter called '{slug}'; the chapters are: {}",
            CHAPTERS
                .iter()
                .map(|c| c.slug)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Slugs of the chapters that can run.
pub fn runnable() -> Vec<&'static str> {
    CHAPTERS
        .iter()
        .filter(|c| c.runnable())
        .map(|c| c.slug)
        .collect()
}

/// A fresh runner for `slug`, or an error naming what can run.
pub fn make_chapter(slug: &str) -> Result<Box<dyn Chapter>, LabError> {
    let info = chapter(slug)?;
    info.make.map(|make| make()).ok_or_else(|| {
        LabError::Params(format!(
            "chapter '{slug}' has nothing to run{}; runnable chapters: {}",
            if info.built { "" } else { " yet (not built)" },
            runnable().join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_params_exist() {
        for (i, c) in CHAPTERS.iter().enumerate() {
            assert!(CHAPTERS[i + 1..].iter().all(|d| d.slug != c.slug));
            for p in c.params.iter().chain(c.defaults.iter().map(|(k, _)| k)) {
                assert!(super::super::params::spec(p).is_some(), "{}: {p}", c.slug);
            }
            for e in c.exercises {
                for (k, v) in e.set {
                    let mut p = super::super::LabParams::default();
                    assert!(p.set(k, v).is_ok(), "{}: {k}={v}", c.slug);
                }
            }
            if let Some(make) = c.make {
                assert_eq!(make().info().slug, c.slug);
            }
        }
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = chapter("nope").unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("supervised") && e.contains("board"));
        let e = make_chapter("board")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not built") && e.contains("supcon"), "{e}");
    }
}
