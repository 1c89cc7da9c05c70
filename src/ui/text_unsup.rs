//! The tutorial's prose for the chapters that learn without labels: PCA and the
//! three autoencoders.

use super::text::ChapterText;

/// `#/pca`
pub const PCA: ChapterText = ChapterText {
    intro: r#"
<p><strong>Principal component analysis</strong> needs no labels and no training loop. It finds the direction along which the images vary most, then the direction of largest remaining variance at right angles to it, and so on. These <em>principal components</em> are the eigenvectors of the covariance matrix, and their eigenvalues are the variances along them. Projecting a centred image onto them is a change of basis; keeping the first k coordinates gives a k-dimensional representation.</p>
<p>Why these directions? Project the centred images onto any k-dimensional subspace. Each image splits into a part inside the subspace and a part at right angles to it, so the reconstruction error is exactly the variance the subspace fails to keep: minimising one maximises the other. No k-dimensional subspace keeps more than the sum of the k largest eigenvalues, and the top k eigenvectors keep exactly that, so the error they leave is the sum of the eigenvalues dropped. The Eckart–Young theorem goes further: no linear map of rank k, orthogonal or not, reconstructs the centred data with a smaller mean squared error. Nonlinear methods can beat PCA; linear ones cannot.</p>
<p>Here PCA is fitted to the unlabelled training images, flattened to 2,352 numbers (3×28×28; 784 for grayscale), with up to 128 components. Rather than decompose the full 2,352×2,352 covariance, a <em>randomized SVD</em> multiplies the centred data by a random matrix with a few more than k columns, which catches the top components in a small subspace, and finishes with an exact SVD of a small matrix. The large products run on the GPU (WebGPU) or on the CPU.</p>
<p>The page opens with a 2-D demo: 200 points from a correlated Gaussian with PC1 and PC2 drawn as arrows scaled by the standard deviation along each, the same points in PC coordinates, and their projections onto each component alone. <em>New sample</em> draws fresh points. Then come the medical images: the components as pictures (each min-max normalised, since a component has negative entries and is not an image), live reconstructions of train, dev and test images with a slider for k from 1 to 128, and the cumulative explained-variance curve.</p>
"#,
    features: r#"
<h3>The PCA features</h3>
<p>The UMAP lays out the test images' PCA coordinates, coloured by class, with the held-out classes ringed. PCA never saw a label, so the rings mean nothing to it; they are there for comparison with other chapters. Classes that differ in what varies most across the whole dataset (overall brightness, colour, the size of the main object) should fall apart; classes that differ only in a small detail carry little variance and tend to overlap. Compare with the supervised encoder: there, labels pulled the training classes into tight islands. Here the layout follows variance, for kept and held-out classes alike.</p>
"#,
    transfer: r#"
<h3>Two baselines</h3>
<p>Nothing is trained here, so there is no fresh head, no before-and-after confusion matrix and no fine-tune. The chapter runs only the converged probe: standardise the features with train-B statistics, fit an L2-regularised logistic regression on train B to convergence with L-BFGS, and score it on dev B and test B. It does this twice, on the PCA features and on the raw pixels, and these two numbers are the baselines of the comparison board. A learned representation that cannot beat the pixels has not made the held-out classes easier to separate with a linear read-out; one that cannot beat PCA has found nothing a linear projection would not.</p>
"#,
    exercises: r#"
<p><strong>1. How many components?</strong> How many components keep 90% of the variance? Hover the curve to read it off; the slider starts there after each fit, and clicking the curve moves it. What is missing from the reconstructions at that k: fine texture, sharp edges, colour? Slide down to k = 1: every image becomes the mean image plus some multiple of the first component, so all that is left is the one property that varies most. Slide up again: at what k can you no longer tell a reconstruction from its original?</p>
<p><strong>2. Do the components generalise?</strong> The components were fitted on training images only. Switch the images to dev and test, which PCA never saw, and compare their reconstructions with the training images' at the same k. Are they worse, or are the directions of largest variance shared by all three splits? With thousands of training images and 128 directions to estimate, which would you expect?</p>
"#,
};

/// `#/linear-ae`
pub const LINEAR_AE: ChapterText = ChapterText {
    intro: r#"
<p>PCA can also be written as a neural network: a k×d matrix W encodes an image as z = W x, and its transpose decodes it, x̂ = Wᵀ z. No bias, no activation, one matrix used twice. The notebook's <em>linear autoencoder</em> trains W to minimise the mean squared error between x and x̂ with AdamW (learning rate 10⁻⁴, batches of 256 unlabelled images) and a 128-dimensional code.</p>
<p>The reconstruction depends on W only through WᵀW, and at the optimum WᵀW is the orthogonal projection onto the top k principal directions: on centred data, the rows of W would span exactly PCA's subspace. Inside it the loss is blind, since replacing W by Q W for any k×k rotation Q changes no reconstruction. Gradient descent therefore lands on <em>some</em> basis of the subspace, generally not the eigenvectors and not sorted by variance, and after finitely many epochs not exactly orthonormal either: low-variance directions give weak gradients and settle last.</p>
<p>One difference matters: PCA subtracts the mean image first, and this model does not. Its subspace belongs to the uncentred second-moment matrix, the covariance plus the mean times its own transpose. The mean of these images is far from zero, so roughly one direction of the learned subspace goes to drawing the average image rather than the variation around it. Expect the two subspaces to be close, not identical.</p>
"#,
    features: r#"
<h3>Rows, W Wᵀ and principal angles</h3>
<p>Each row of W is a direction in pixel space and can be drawn as an image; the page shows the learned rows next to PCA's components, both min-max normalised. Expect mixtures of components, not copies. The heatmap of W Wᵀ holds the dot products between rows (blue −1, white 0, red +1): the identity, a red diagonal on white, means orthonormal rows.</p>
<p>Beyond the notebook, the app compares the subspaces themselves through their <em>principal angles</em>, after every epoch. The first is the smallest angle between a direction in one subspace and a direction in the other; each next one is the smallest among directions orthogonal to those already paired. All angles at 0° means the same subspace, whatever the bases; 90° means a direction of one is orthogonal to all of the other. Watch which angles fall during training and which stay large. A UMAP of the code closes the section.</p>
"#,
    transfer: r#"
<h3>Transfer</h3>
<p>The code goes through the shared transfer protocol: a fresh linear head trained on train B (AdamW, learning rate 10⁻⁴, batch 128, the chosen number of epochs) while the encoder stays frozen; a fine-tune, which starts again from the pre-trained encoder with a new head and updates every weight; the converged probe on the frozen code; and the same probe on an untrained encoder. Here an untrained encoder is a random projection onto 128 directions, which already roughly preserves distances between images. If the subspaces nearly agree, the converged accuracy should be close to PCA's.</p>
"#,
    exercises: r#"
<p><strong>1. Orthogonality.</strong> Train for 10 epochs and look at W Wᵀ. Is the diagonal near 1 and the rest near 0? For this tied model the exact minimisers have orthonormal rows, but there are infinitely many, one per rotation of the basis, and nothing steers gradient descent to the eigenvectors or makes it finish: what remains off the diagonal is unfinished training. With a separate decoder there would be more freedom still: any invertible mixing of the encoder's rows, undone by the decoder, gives the same loss, so non-orthogonal solutions would be exact minimisers too.</p>
<p><strong>2. A bias.</strong> Switch on the encoder bias and retrain. The code becomes z = W x + b and the reconstruction Wᵀ W x + Wᵀ b: a fixed image added to every output. PCA handles the offset by subtracting the mean before projecting and adding it back afterwards, outside its k directions. Does the loss drop? Do the rows look different? Notice that Wᵀ b is a combination of the rows of W, so it lies inside the learned subspace, where the best reconstruction is the orthogonal projection that W alone already gives. The bias lets the code shift, for instance to centre itself; to absorb the mean image as PCA does, the offset would have to sit in the decoder.</p>
"#,
};

/// `#/autoencoder`
pub const MLP_AE: ChapterText = ChapterText {
    intro: r#"
<p>PCA and the linear autoencoder can only write an image as a weighted sum of fixed basis images. A nonlinear autoencoder drops that restriction. Its <em>encoder</em> passes the flattened image through two blocks of Linear → LayerNorm → LeakyReLU, 256 units each, into a linear <em>bottleneck</em> of 128 numbers: the code. The <em>decoder</em> mirrors it with two more 256-unit blocks and ends in a plain linear layer with one output per pixel value. It has no activation on purpose: a sigmoid or ReLU would squash or clip the outputs, and the decoder must be free to produce any value a pixel needs. Training minimises the mean squared reconstruction error with AdamW at a learning rate of 10⁻³, ten times the linear model's, and batches of 256.</p>
<p>The bottleneck is the point of the design. Everything the decoder draws must pass through 128 numbers, so the encoder has to choose what to keep. A narrow code keeps the large-scale structure (the outline, the overall colour, where the bright and dark regions are) and lets fine detail go. The only training signal is the reconstruction error, pixel by pixel. So the code keeps whatever would cost the most pixel error to lose, which need not be what tells the classes apart: a detail that identifies a class but covers few pixels is cheap to drop; a background shade covering hundreds of pixels is not.</p>
"#,
    features: r#"
<h3>Reconstructions and the code</h3>
<p>The reconstructions are of dev images that the autoencoder never trained on, so they show what it has learned about images in general rather than what it has memorised. Are they sharp or blurred, and which details go first? Below them, the UMAP of the test images' codes: does the layout follow the classes, or mostly brightness and colour, as PCA's did?</p>
"#,
    transfer: r#"
<h3>Transfer</h3>
<p>The code goes through the shared transfer protocol: a fresh linear head on the frozen encoder (AdamW, learning rate 10⁻⁴, batch 128), a fine-tune of everything, the converged probe and the untrained-encoder baseline. The two confusion matrices show dev B before the head is trained, when its predictions are arbitrary, and after. A strong diagonal means the code already separates the held-out classes; off-diagonal blocks show which classes the reconstruction objective did not bother to keep apart. The gap between this converged probe and PCA's is what the nonlinearity bought.</p>
"#,
    exercises: r#"
<p><strong>1. Bottleneck size.</strong> Train with codes of 8, 32 and 128 numbers and compare the reconstructions and the UMAPs. What is the smallest code that still gives clean clusters? Does squeezing the code ever make it more class-discriminative, or only blurrier?</p>
<p><strong>2. What do labels add?</strong> After every run the page fits a converged probe on the code for the kept classes, from train A to dev A, and reports its accuracy as <code>kept_probe_dev_a</code>. Compare it with the dev-A accuracy of the supervised chapter, whose network learned from those labels from the start. The difference is roughly the price of pre-training without labels. The comparison is not perfectly even: that model is a ConvNet trained end to end, this a frozen code from another architecture read by a linear probe.</p>
"#,
};

/// `#/conv-ae`
pub const CONV_AE: ChapterText = ChapterText {
    intro: r#"
<p>The MLP autoencoder treats an image as a list of 2,352 unrelated numbers: shuffle the pixels the same way in every image and it would learn just as well. Convolutions build in what we know about images. Each output looks only at a small neighbourhood, here 3×3 pixels (<em>locality</em>). The same small kernel is applied at every position (<em>weight sharing</em>), so a pattern learned in one place is recognised everywhere, and shifting the input shifts the feature maps with it, up to the subsampling (<em>translation equivariance</em>). That makes layers cheap: on RGB images the MLP's first layer has about 600,000 weights (2,352 × 256), this network's first convolution 864 (3 channels × 32 kernels × 3×3). Stacked layers see ever larger regions, giving a <em>hierarchy</em>: edges and colour blobs first, then textures and parts.</p>
<p>The encoder has three blocks of 3×3 convolution with stride 2 → BatchNorm → ReLU, with 32, 64 and 128 channels, taking the image from 28×28 to 14×14, 7×7 and 4×4. The stride does the downsampling that max-pooling did in the supervised ConvNet, but with learned weights. The 128×4×4 = 2,048 values are flattened and mapped by a linear layer and a ReLU to the 128-dimensional code. The decoder runs backwards: a linear layer back to 2,048 values and a ReLU, reshaped to 128×4×4, then three blocks of bilinear upsampling → 3×3 convolution → BatchNorm → ReLU. The first block upsamples to 7×7 (doubling 4 would give 8), the next two double to 14×14 and 28×28, and the last keeps only its convolution, without BatchNorm or ReLU, so the output can take any value. Training uses the MSE, AdamW at 10⁻⁴ and batches of 256.</p>
<p>Why upsample and then convolve, rather than use transposed convolutions, the usual inverse of a strided convolution? A transposed convolution with stride 2 stamps overlapping copies of its 3×3 kernel onto the output, and since 3 is not a multiple of 2, some output pixels get more contributions than their neighbours: a faint checkerboard that the network must learn to cancel. Bilinear upsampling treats every output pixel alike, and the convolution after it only has to refine a smooth image.</p>
"#,
    features: r#"
<h3>Reconstructions and the code</h3>
<p>Compare the reconstructions of unseen dev images with the MLP autoencoder's at the same code size: are edges sharper, is texture better kept? Then look at the UMAP of the test codes, coloured by class with the held-out classes ringed. The code comes out of a ReLU, so none of its entries is negative.</p>
"#,
    transfer: r#"
<h3>Freeze or fine-tune</h3>
<p>Transfer follows the shared protocol, and its two training runs share one chart. The solid curves are the head-only run: a fresh linear head on the frozen encoder, AdamW at 10⁻⁴, batches of 128. The dashed curves are the fine-tune: a new head on the same pre-trained encoder, with every weight updated. Freezing keeps the features exactly as pre-training left them and fits a few hundred parameters. Fine-tuning can adapt the features to the held-out classes, but it has hundreds of thousands of weights to fit to a few hundred images.</p>
"#,
    exercises: r#"
<p><strong>Freeze or fine-tune?</strong> Train for 10 epochs and read the chart and the dev-B accuracies. Does fine-tuning beat the frozen encoder with this small transfer set, or does it do worse? Which run's dev loss falls faster, and does either start to rise again while its training loss keeps falling? Fine-tuning risks <em>catastrophic forgetting</em>: gradients from a head that starts out random can overwrite what pre-training learned. If that happens here, the fine-tuned run ends below the frozen one on dev B even though its training loss is lower. Compare both with the converged probe on the frozen features, too.</p>
"#,
};
