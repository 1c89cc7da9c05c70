//! MedMNIST v2's 2-D datasets and their label tables.
//!
//! The class names are MedMNIST's own (`medmnist.INFO[name]["label"]`), so a bundle
//! converted here speaks the same vocabulary as the papers and the notebook.

/// One MedMNIST 2-D dataset.
#[derive(Clone, Copy, Debug)]
pub struct DatasetInfo {
    /// The lowercase name, e.g. `bloodmnist`.
    pub name: &'static str,
    /// A short title, e.g. `BloodMNIST`.
    pub title: &'static str,
    /// 1 for grayscale, 3 for RGB.
    pub channels: usize,
    /// The class names indexed by label.
    pub labels: &'static [&'static str],
    /// What the images show.
    pub description: &'static str,
    /// ChestMNIST is multi-label; the lab needs one label per image.
    pub multi_label: bool,
}

const ORGAN: &[&str] = &[
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
];

/// Every MedMNIST v2 2-D dataset.
pub const DATASETS: &[DatasetInfo] = &[
    DatasetInfo {
        name: "pathmnist",
        title: "PathMNIST",
        channels: 3,
        labels: &[
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ],
        description: "colon pathology tiles",
        multi_label: false,
    },
    DatasetInfo {
        name: "chestmnist",
        title: "ChestMNIST",
        channels: 1,
        labels: &[
            "atelectasis",
            "cardiomegaly",
            "effusion",
            "infiltration",
            "mass",
            "nodule",
            "pneumonia",
            "pneumothorax",
            "consolidation",
            "edema",
            "emphysema",
            "fibrosis",
            "pleural",
            "hernia",
        ],
        description: "chest X-rays (multi-label)",
        multi_label: true,
    },
    DatasetInfo {
        name: "dermamnist",
        title: "DermaMNIST",
        channels: 3,
        labels: &[
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ],
        description: "dermatoscopy images",
        multi_label: false,
    },
    DatasetInfo {
        name: "octmnist",
        title: "OCTMNIST",
        channels: 1,
        labels: &[
            "choroidal neovascularization",
            "diabetic macular edema",
            "drusen",
            "normal",
        ],
        description: "retinal OCT scans",
        multi_label: false,
    },
    DatasetInfo {
        name: "pneumoniamnist",
        title: "PneumoniaMNIST",
        channels: 1,
        labels: &["normal", "pneumonia"],
        description: "paediatric chest X-rays",
        multi_label: false,
    },
    DatasetInfo {
        name: "retinamnist",
        title: "RetinaMNIST",
        channels: 3,
        labels: &["0", "1", "2", "3", "4"],
        description: "fundus photographs graded 0-4",
        multi_label: false,
    },
    DatasetInfo {
        name: "breastmnist",
        title: "BreastMNIST",
        channels: 1,
        labels: &["malignant", "normal, benign"],
        description: "breast ultrasound",
        multi_label: false,
    },
    DatasetInfo {
        name: "bloodmnist",
        title: "BloodMNIST",
        channels: 3,
        labels: &[
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes (myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ],
        description: "blood cell microscopy",
        multi_label: false,
    },
    DatasetInfo {
        name: "tissuemnist",
        title: "TissueMNIST",
        channels: 1,
        labels: &[
            "Collecting Duct, Connecting Tubule",
            "Distal Convoluted Tubule",
            "Glomerular endothelial cells",
            "Interstitial endothelial cells",
            "Leukocytes",
            "Podocytes",
            "Proximal Tubule Segments",
            "Thick Ascending Limb",
        ],
        description: "kidney cortex microscopy",
        multi_label: false,
    },
    DatasetInfo {
        name: "organamnist",
        title: "OrganAMNIST",
        channels: 1,
        labels: ORGAN,
        description: "abdominal CT, axial view",
        multi_label: false,
    },
    DatasetInfo {
        name: "organcmnist",
        title: "OrganCMNIST",
        channels: 1,
        labels: ORGAN,
        description: "abdominal CT, coronal view",
        multi_label: false,
    },
    DatasetInfo {
        name: "organsmnist",
        title: "OrganSMNIST",
        channels: 1,
        labels: ORGAN,
        description: "abdominal CT, sagittal view",
        multi_label: false,
    },
];

/// Look a dataset up by name (case-insensitive).
pub fn find(name: &str) -> Option<&'static DatasetInfo> {
    let lower = name.to_ascii_lowercase();
    DATASETS.iter().find(|d| d.name == lower)
}

/// The dataset a file's name says it holds: `bloodmnist.npz`, `BloodMNIST_64.npz` or
/// `bloodmnist (1).npz` are BloodMNIST. The longest name the file's name starts with
/// wins; `None` when it starts with none.
pub fn from_file_name(file: &str) -> Option<&'static DatasetInfo> {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let lower = base.to_ascii_lowercase();
    DATASETS
        .iter()
        .filter(|d| {
            lower
                .strip_prefix(d.name)
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric()))
        })
        .max_by_key(|d| d.name.len())
}

/// The known names, comma-separated, for error messages.
pub fn known_names() -> String {
    DATASETS
        .iter()
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The licence line every bundle carries.
pub const LICENCE: &str = "CC BY 4.0";

/// The credit every bundle and page shows.
pub const CREDIT: &str = "MedMNIST v2: Yang, J., Shi, R., Wei, D. et al. MedMNIST v2 - A large-scale \
lightweight benchmark for 2D and 3D biomedical image classification. Scientific Data 10, 41 (2023). \
Images derived from the datasets credited at medmnist.com, used under CC BY 4.0.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lowercase() {
        for (i, a) in DATASETS.iter().enumerate() {
            assert_eq!(a.name, a.name.to_ascii_lowercase());
            for b in &DATASETS[i + 1..] {
                assert_ne!(a.name, b.name);
            }
        }
        assert_eq!(find("BloodMNIST").map(|d| d.labels.len()), Some(8));
        assert_eq!(find("organamnist").map(|d| d.labels.len()), Some(11));
        assert!(find("mnist").is_none());
    }

    #[test]
    fn file_names_name_their_dataset() {
        let name = |f: &str| from_file_name(f).map(|d| d.name);
        assert_eq!(name("bloodmnist.npz"), Some("bloodmnist"));
        assert_eq!(name("C:\\data\\BloodMNIST_64.npz"), Some("bloodmnist"));
        assert_eq!(name("dl/organamnist (1).npz"), Some("organamnist"));
        assert_eq!(name("pathmnist_train1000.npz"), Some("pathmnist"));
        assert_eq!(name("bloodmnistx.npz"), None);
        assert_eq!(name("mnist.npz"), None);
        assert_eq!(name("data.npz"), None);
    }
}
