//! The tutorial's prose. Written for this app; each chapter's text sits beside the
//! controls it explains.

/// `#/data`, before the sample grid.
pub const DATA_INTRO: &str = r#"
<p>Every chapter works on <a href="https://medmnist.com">MedMNIST</a>: small, standardised medical images of 28×28 pixels. The default is <strong>BloodMNIST</strong>, microscope photographs of single blood cells in eight classes (basophils, eosinophils, platelets and so on). <strong>OrganAMNIST</strong> is the second bundle: grayscale CT slices of eleven abdominal organs. Both are loaded straight into this page, checked against their SHA-256 checksums, and kept in your browser's cache, so a second visit costs no download.</p>
<p>Look at the grid below before training anything. Which classes could you tell apart yourself? Colour and texture separate some blood cells at a glance; others differ only in the shape of the nucleus. A network will have to discover those cues on its own, and the rest of the lab is about <em>what</em> it discovers: the representation.</p>
"#;

/// `#/data`, above the split table.
pub const DATA_SPLIT: &str = r#"
<p>The lab simulates two situations that real projects meet all the time. First, <strong>labels are scarce</strong>: only a fraction of each class (the <em>labelled ratio</em>, 20% by default) keeps its label; the rest is treated as unlabelled and is only used by the self-supervised chapters. Second, <strong>the task changes</strong>: a share of the classes (the <em>held-out ratio</em>, 30%) is set aside. Models are trained on the remaining classes (split <strong>A</strong>) and then asked how well their representation serves the held-out classes (split <strong>B</strong>), which they never saw.</p>
<p>The split is drawn exactly as the original notebook draws it, with NumPy's PCG64 generator reimplemented in Rust, so seed 42 picks the same held-out classes and the same images. Change the ratios or the seed and watch the numbers move; every chapter uses the split shown here.</p>
"#;

/// `#/supervised`, at the top.
pub const SUPERVISED_INTRO: &str = r#"
<p>A <strong>representation</strong> is what a network turns an image into before it makes a decision: a vector of numbers, here 128 of them. Nobody tells the network what those numbers should mean. Training only asks that a linear classifier on top of them gets the labels right, and whatever helps with that is what the encoder learns to compute.</p>
<p>The network is the notebook's small ConvNet. Three blocks of <em>3×3 convolution → batch normalisation → ReLU → 2×2 max-pooling</em> shrink the image from 28×28 to 14×14, 7×7 and finally 3×3 with 128 channels. Those 1,152 numbers are flattened and mapped to the 128-dimensional <em>encoder</em> output. Before the classifier the features are batch-normalised and projected onto the unit sphere, so the classifier can only use their direction, not their length.</p>
<p>Press <em>Run</em> to train on split A with AdamW (learning rate 10⁻⁴, batch 128). <em>Run</em> always starts from a fresh, seeded network, so a run can be reproduced from its link; once a run has finished, <em>Continue training</em> trains the same network further, as re-running a notebook cell does, and <em>Reset</em> forgets it. A run belongs to the whole app: you can read other chapters while it trains, and the header shows it and can cancel it from anywhere. The chart shows the loss of every step (faint, smoothed) and the mean training and dev loss of every epoch. These are mean <em>per-example</em> losses. The notebook divides a sum of batch means by the number of examples, so its plotted values are smaller than these by roughly the batch size; the shape of the curves is the same.</p>
"#;

/// `#/supervised` and `#/supcon`, above the UMAPs.
pub const FEATURES: &str = r#"
<h3>Features at three depths</h3>
<p>Below, the test images are embedded at three points of the network and laid out in 2-D with UMAP (cosine distance, 15 neighbours, 300 images per class). Colours are classes; a ring marks the <strong>held-out</strong> classes that the network never saw a label for. Hover over a point to see which image it is.</p>
<p>Compare the panels. The flattened convolution features still describe the image: colour, texture, where things are. The encoder output has been shaped by the classification objective, so the training classes form tighter, better separated islands. Watch where the held-out classes land: if they form their own clusters, the representation transfers; if they are smeared over the training classes, the encoder has learned to ignore what tells them apart. The normalised features are what the classifier sees; on the sphere, only angles matter.</p>
"#;

/// `#/supervised` and `#/supcon`, above the transfer results.
pub const TRANSFER: &str = r#"
<h3>Transfer to the held-out classes</h3>
<p>To reuse the encoder for the held-out classes we throw away the classifier and put a new, randomly initialised one in its place. The first confusion matrix shows that fresh head on dev B: it guesses. We then train <strong>only the head</strong> while the encoder stays frozen. Freezing the encoder matters: gradients flowing from a random head into the encoder are noise at first, and they can wreck features that took the whole first phase to learn. The second run (the dashed curves) tests that risk directly: it starts again from the trained encoder with another fresh head and fine-tunes everything, so you can see whether adjusting the encoder to the new classes helps more than the early noisy gradients hurt.</p>
<p>Two linear probes are reported, and they often disagree. The notebook's probe takes only about fifty small AdamW steps at a learning rate of 10⁻⁴ from a random start, so its accuracy depends as much on how far the optimiser got as on the features; across seeds it swings by ten points and sometimes predicts a single class. The <strong>converged probe</strong> is the standard protocol: standardise the frozen encoder features with train-B statistics, then fit an L2-regularised multinomial logistic regression to convergence with L-BFGS. There is one answer for a given feature set, so differences between models are differences between representations. The same probe on an <strong>untrained</strong> encoder is the baseline: random convolutions already give surprisingly usable features on small images, and what training adds is the gap above that line.</p>
"#;

/// `#/supervised` exercises.
pub const SUPERVISED_EXERCISES: &str = r#"
<p><strong>1. How much labelled data?</strong> Each button retrains from scratch with that labelled ratio and adds a row to the table. Compare the converged transfer accuracy and the encoder UMAPs. Does more labelled data of the <em>training</em> classes make the held-out clusters cleaner, or does the encoder just get better at the training task?</p>
<p><strong>2. Freeze or fine-tune?</strong> The transfer chart shows the head-only run and the fine-tune run together. Which reaches the lower dev loss, and which gets there faster? With only a few hundred transfer images, can you see fine-tuning start to overfit?</p>
"#;

/// `#/supcon`, at the top.
pub const SUPCON_INTRO: &str = r#"
<p>Supervised contrastive learning keeps the labels but drops the classifier. The encoder is followed by a small <em>projection head</em> (Linear → ReLU), batch normalisation and projection onto the unit sphere. In every batch, each image is an <em>anchor</em>; the other images of its class are its <em>positives</em>, everything else is a negative. The loss asks each anchor to pick out its positives from the whole batch by cosine similarity, divided by a <em>temperature</em> (0.07): for every positive it adds the negative log-probability of choosing that positive over all other images, averaged over the positives. Self-pairs are masked out, and anchors that have no positive in the batch are skipped.</p>
<p>Instead of pulling images towards one fixed vector per class, the loss pulls them towards each other and pushes other classes away, so the geometry of the classes is learned rather than imposed. The projection head absorbs the most loss-specific part of that geometry; for transfer we use the encoder output <em>before</em> the projection head, which usually generalises better.</p>
"#;

/// `#/supcon` exercises.
pub const SUPCON_EXERCISES: &str = r#"
<p><strong>1. Temperature.</strong> Low temperatures (0.01) make the loss care almost only about the hardest negatives; high ones (0.5) spread the attention over the whole batch. Watch the loss curve's stability and the separation of the clusters.</p>
<p><strong>2. Batch size.</strong> The loss can only use positives and negatives that are in the same batch. With batch 32 some anchors have no positive at all; with 512 every anchor has many. Is the small-batch loss noisier, and does it hurt the transfer accuracy?</p>
"#;

/// `#/clip`, at the top.
pub const CLIP_INTRO: &str = r#"
<p>Every encoder so far learned from a few thousand 28×28 medical images. <strong>CLIP</strong> went the other way: OpenAI trained it on 400 million pictures from the internet, each paired with the text that accompanied it. Its image encoder and a text encoder were pulled together whenever an image and its caption belonged together and pushed apart otherwise, the same contrastive idea as SimCLR, only across two modalities and at a vastly larger scale. No one ever gave it a label for a blood cell.</p>
<p>The image encoder is a <strong>Vision Transformer</strong>, ViT-B/32. It cuts a 224×224 image into a 7×7 grid of 32×32 patches, turns each patch into a 768-dimensional token, adds a learned position to each, prepends one extra <em>class token</em>, and lets the 50 tokens exchange information through 12 layers of self-attention. The class token's final state, normalised and projected to 512 numbers, is the image's representation. That is about 88 million weights and 4.4 billion multiply-adds per image: roughly a thousand times the ConvNet of the earlier chapters.</p>
<p>Our images are 28×28, so each is first enlarged eight-fold with bicubic interpolation, exactly as CLIP's own preprocessing would do it, grayscale copied into three channels, and normalised with the mean and spread of CLIP's training pictures. The question of this chapter: does breadth beat relevance? Can features learned from cats, cars and captions separate cell types they have never seen better than the small networks trained here on the right kind of images?</p>
"#;

/// `#/clip`, when no weights are deployed.
pub const CLIP_WEIGHTS_MISSING: &str = r#"
<p><strong>The CLIP weights are not bundled with this copy of the lab.</strong> They are about 88 MB once quantised to 8 bits, and the original checkpoint comes from OpenAI under its own terms, so each user brings their own. To make the file, download the ViT-B/32 checkpoint in safetensors form (open_clip's <code>ViT-B-32-quickgelu</code> / <code>openai</code>, timm's <code>vit_base_patch32_clip_224.openai</code>, or Hugging Face's <code>openai/clip-vit-base-patch32</code>), then run</p>
<pre>cargo run --release -- convert-clip open_clip_model.safetensors --out clip-vit-b32-int8.safetensors</pre>
<p>and either drop the result on the box below, or choose it with the file picker, or deploy it as <code>public/models/clip-vit-b32-int8.safetensors</code> so the page finds it by itself. Nothing is uploaded anywhere: the file is read by this page only.</p>
"#;

/// `#/clip`, before the results.
pub const CLIP_PROBE: &str = r#"
<p>The encoder stays frozen. We embed a sample of the held-out classes (train B and dev B) and of the test split, then ask two questions. First, <strong>what does the space look like?</strong> The UMAP below lays out the 512-dimensional test embeddings in two; held-out classes are ringed, and hovering a point shows its image. Second, <strong>how much does a linear read-out recover?</strong> The notebook trains a linear head with AdamW (learning rate 10⁻³, weight decay 10⁻⁴, batches of 128) for the chosen number of epochs; because the encoder never changes, we train that head on the cached embeddings, which gives the same result for a fraction of the cost. The converged probe then solves the same problem to optimality with L-BFGS, so the number measures the representation rather than the optimiser.</p>
<p>On the CPU one image takes a noticeable fraction of a second, so the default sample is small and the page quotes the expected time before you start. On a GPU the default is larger. Compare the numbers with the converged probes of the earlier chapters: same held-out classes, same protocol.</p>
"#;

/// The texts of a chapter page, in page order.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChapterText {
    /// At the top.
    pub intro: &'static str,
    /// Above the charts.
    pub features: &'static str,
    /// Below the charts, about transfer.
    pub transfer: &'static str,
    /// Above the exercise buttons.
    pub exercises: &'static str,
}

/// The texts of the chapter `slug` (empty for a chapter without a page).
pub fn chapter(slug: &str) -> ChapterText {
    match slug {
        "supervised" => ChapterText {
            intro: SUPERVISED_INTRO,
            features: FEATURES,
            transfer: TRANSFER,
            exercises: SUPERVISED_EXERCISES,
        },
        "supcon" => ChapterText {
            intro: SUPCON_INTRO,
            features: FEATURES,
            transfer: TRANSFER,
            exercises: SUPCON_EXERCISES,
        },
        "clip" => ChapterText {
            intro: CLIP_INTRO,
            ..ChapterText::default()
        },
        "pca" => super::text_unsup::PCA,
        "linear-ae" => super::text_unsup::LINEAR_AE,
        "autoencoder" => super::text_unsup::MLP_AE,
        "conv-ae" => super::text_unsup::CONV_AE,
        "simclr" => super::text_ssl::SIMCLR,
        "dino" => super::text_ssl::DINO,
        _ => ChapterText::default(),
    }
}
