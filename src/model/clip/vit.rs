//! CLIP's ViT image encoder as a burn module.
//!
//! The network is open_clip's `VisionTransformer` with class-token pooling:
//! patch convolution → class token + positions → `ln_pre` → pre-norm residual
//! blocks → `ln_post` on the class token → projection. Weights use PyTorch's
//! `[out, in]` layout on the device, and the forward pass multiplies by their
//! transpose, so nothing is copied at load time.

use super::config::{Activation, ClipVisionConfig};
use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::module::{attention, conv2d, layer_norm};
use burn::tensor::ops::{AttentionModuleOptions, ConvOptions};
use burn::tensor::{Distribution, FloatDType, TensorData};

/// How the weight matrices live on the device. Biases, norms and embeddings are
/// small and always stay f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightStore {
    /// Full precision: exact parity with the reference.
    F32,
    /// Half precision, widened to f32 one matrix at a time as the forward pass
    /// reaches it. For int8-quantised files this loses nothing that matters (f16
    /// keeps 11 significant bits, int8 has 8) and halves device memory.
    F16,
}

impl WeightStore {
    fn store<const D: usize>(self, t: Tensor<D>) -> Tensor<D> {
        match self {
            WeightStore::F32 => t,
            WeightStore::F16 => t.cast(FloatDType::F16),
        }
    }
}

/// A stored weight, widened for computing.
fn wide<const D: usize>(p: &Param<Tensor<D>>) -> Tensor<D> {
    let t = p.val();
    if t.dtype() != burn::tensor::DType::F32 {
        t.cast(FloatDType::F32)
    } else {
        t
    }
}

/// A LayerNorm's scale and shift.
#[derive(Module, Debug)]
pub struct Norm {
    weight: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
}

impl Norm {
    fn new(weight: Tensor<1>, bias: Tensor<1>) -> Self {
        Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
        }
    }

    fn forward<const D: usize>(&self, x: Tensor<D>, eps: f64) -> Tensor<D> {
        layer_norm(x, self.weight.val(), Some(self.bias.val()), eps)
    }
}

/// A PyTorch-layout linear layer: `y = x Wᵀ + b` with `W` of shape `[out, in]`.
#[derive(Module, Debug)]
pub struct Dense {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

impl Dense {
    fn new(weight: Tensor<2>, bias: Tensor<1>) -> Self {
        Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
        }
    }

    /// `[rows, in]` → `[rows, out]`.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(wide(&self.weight).transpose()) + self.bias.val().unsqueeze::<2>()
    }
}

/// One pre-norm residual block: attention then MLP, each added back.
#[derive(Module, Debug)]
pub struct Block {
    ln_1: Norm,
    /// Fused query/key/value projection, `[3 width, width]`.
    in_proj: Dense,
    out_proj: Dense,
    ln_2: Norm,
    c_fc: Dense,
    c_proj: Dense,
}

/// The visual tower of CLIP.
#[derive(Module, Debug)]
pub struct ClipVision {
    /// Patch embedding, `[width, 3, patch, patch]`, no bias.
    conv1: Param<Tensor<4>>,
    class_embedding: Param<Tensor<1>>,
    positional_embedding: Param<Tensor<2>>,
    ln_pre: Norm,
    blocks: Vec<Block>,
    ln_post: Norm,
    /// `[width, output_dim]`, applied as `x @ proj`.
    proj: Param<Tensor<2>>,
    patch: usize,
    width: usize,
    heads: usize,
    quick_gelu: bool,
    ln_eps: f64,
}

/// The source of a model's tensors: a name and a shape in, values out.
///
/// The converted-weights reader implements this by dequantising one tensor at
/// a time, so the host never holds more than one f32 copy of a layer.
pub trait TensorSource {
    /// The error a missing or malformed tensor produces.
    type Error;
    /// The values of `name`, which must have `shape`, in row-major order.
    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, Self::Error>;
}

fn load<const D: usize, S: TensorSource>(
    src: &S,
    name: &str,
    shape: [usize; D],
    device: &Device,
) -> Result<Tensor<D>, S::Error> {
    let values = src.values(name, &shape)?;
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

fn load_norm<S: TensorSource>(
    src: &S,
    prefix: &str,
    width: usize,
    device: &Device,
) -> Result<Norm, S::Error> {
    Ok(Norm::new(
        load(src, &format!("{prefix}.weight"), [width], device)?,
        load(src, &format!("{prefix}.bias"), [width], device)?,
    ))
}

fn load_dense<S: TensorSource>(
    src: &S,
    weight: &str,
    bias: &str,
    [d_out, d_in]: [usize; 2],
    store: WeightStore,
    device: &Device,
) -> Result<Dense, S::Error> {
    Ok(Dense::new(
        store.store(load(src, weight, [d_out, d_in], device)?),
        load(src, bias, [d_out], device)?,
    ))
}

impl Block {
    /// Load block `i` from canonical (open_clip) names.
    pub fn load<S: TensorSource>(
        src: &S,
        i: usize,
        cfg: &ClipVisionConfig,
        store: WeightStore,
        device: &Device,
    ) -> Result<Self, S::Error> {
        let (w, m) = (cfg.width, cfg.mlp_dim);
        let p = format!("transformer.resblocks.{i}");
        Ok(Self {
            ln_1: load_norm(src, &format!("{p}.ln_1"), w, device)?,
            in_proj: load_dense(
                src,
                &format!("{p}.attn.in_proj_weight"),
                &format!("{p}.attn.in_proj_bias"),
                [3 * w, w],
                store,
                device,
            )?,
            out_proj: load_dense(
                src,
                &format!("{p}.attn.out_proj.weight"),
                &format!("{p}.attn.out_proj.bias"),
                [w, w],
                store,
                device,
            )?,
            ln_2: load_norm(src, &format!("{p}.ln_2"), w, device)?,
            c_fc: load_dense(
                src,
                &format!("{p}.mlp.c_fc.weight"),
                &format!("{p}.mlp.c_fc.bias"),
                [m, w],
                store,
                device,
            )?,
            c_proj: load_dense(
                src,
                &format!("{p}.mlp.c_proj.weight"),
                &format!("{p}.mlp.c_proj.bias"),
                [w, m],
                store,
                device,
            )?,
        })
    }

    fn random(cfg: &ClipVisionConfig, device: &Device) -> Self {
        let (w, m) = (cfg.width, cfg.mlp_dim);
        Self {
            ln_1: Norm::new(Tensor::ones([w], device), Tensor::zeros([w], device)),
            in_proj: Dense::new(
                normal([3 * w, w], w, device),
                Tensor::zeros([3 * w], device),
            ),
            out_proj: Dense::new(normal([w, w], w, device), Tensor::zeros([w], device)),
            ln_2: Norm::new(Tensor::ones([w], device), Tensor::zeros([w], device)),
            c_fc: Dense::new(normal([m, w], w, device), Tensor::zeros([m], device)),
            c_proj: Dense::new(normal([w, m], m, device), Tensor::zeros([w], device)),
        }
    }

    /// `[batch·tokens, width]` → the same shape.
    fn forward(&self, x: Tensor<2>, model: &ClipVision, batch: usize, tokens: usize) -> Tensor<2> {
        let (w, h) = (model.width, model.heads);
        let dh = w / h;
        let y = self.ln_1.forward(x.clone(), model.ln_eps);
        let qkv = self.in_proj.forward(y); // [batch·tokens, 3·width]
        let qkv: Tensor<5> = qkv
            .reshape([batch, tokens, 3, h, dh])
            .permute([2, 0, 3, 1, 4]); // [3, batch, heads, tokens, dh]
        let part = |i: usize| -> Tensor<4> { qkv.clone().narrow(0, i, 1).squeeze_dim(0) };
        let ctx = attention(
            part(0),
            part(1),
            part(2),
            None,
            None,
            AttentionModuleOptions::default(),
        ); // [batch, heads, tokens, dh]
        let ctx: Tensor<2> = ctx.swap_dims(1, 2).reshape([batch * tokens, w]);
        let x = x + self.out_proj.forward(ctx);
        let y = self.ln_2.forward(x.clone(), model.ln_eps);
        let hidden = self.c_fc.forward(y); // [batch·tokens, mlp]
        let hidden = if model.quick_gelu {
            hidden.clone() * sigmoid(hidden * 1.702)
        } else {
            gelu(hidden)
        };
        x + self.c_proj.forward(hidden)
    }
}

/// Normal(0, 1/√fan_in) weights, for benchmarks and tests with random towers.
fn normal<const D: usize>(shape: [usize; D], fan_in: usize, device: &Device) -> Tensor<D> {
    let std = 1.0 / (fan_in.max(1) as f64).sqrt();
    Tensor::random(shape, Distribution::Normal(0.0, std), device)
}

impl ClipVision {
    /// Load the stem (patch embedding, class token, positions, `ln_pre`), the
    /// head (`ln_post`, `proj`) and no blocks; add them with [`ClipVision::push_block`].
    pub fn load_stem<S: TensorSource>(
        src: &S,
        cfg: &ClipVisionConfig,
        store: WeightStore,
        device: &Device,
    ) -> Result<Self, S::Error> {
        let (w, p) = (cfg.width, cfg.patch_size);
        Ok(Self {
            conv1: Param::from_tensor(store.store(load(
                src,
                "conv1.weight",
                [w, 3, p, p],
                device,
            )?)),
            class_embedding: Param::from_tensor(load(src, "class_embedding", [w], device)?),
            positional_embedding: Param::from_tensor(load(
                src,
                "positional_embedding",
                [cfg.tokens(), w],
                device,
            )?),
            ln_pre: load_norm(src, "ln_pre", w, device)?,
            blocks: Vec::with_capacity(cfg.layers),
            ln_post: load_norm(src, "ln_post", w, device)?,
            proj: Param::from_tensor(store.store(load(src, "proj", [w, cfg.output_dim], device)?)),
            patch: p,
            width: w,
            heads: cfg.heads,
            quick_gelu: cfg.activation == Activation::QuickGelu,
            ln_eps: cfg.ln_eps,
        })
    }

    /// Append the next residual block.
    pub fn push_block(&mut self, block: Block) {
        self.blocks.push(block);
    }

    /// Blocks loaded so far.
    pub fn depth(&self) -> usize {
        self.blocks.len()
    }

    /// Load every tensor of the tower, block by block.
    pub fn load<S: TensorSource>(
        src: &S,
        cfg: &ClipVisionConfig,
        store: WeightStore,
        device: &Device,
    ) -> Result<Self, S::Error> {
        let mut model = Self::load_stem(src, cfg, store, device)?;
        for i in 0..cfg.layers {
            model.push_block(Block::load(src, i, cfg, store, device)?);
        }
        Ok(model)
    }

    /// A tower with random weights: the architecture without the training, for
    /// benchmarks and shape tests.
    pub fn random(cfg: &ClipVisionConfig, device: &Device) -> Self {
        let (w, p) = (cfg.width, cfg.patch_size);
        Self {
            conv1: Param::from_tensor(normal([w, 3, p, p], 3 * p * p, device)),
            class_embedding: Param::from_tensor(normal([w], w, device)),
            positional_embedding: Param::from_tensor(normal([cfg.tokens(), w], w, device)),
            ln_pre: Norm::new(Tensor::ones([w], device), Tensor::zeros([w], device)),
            blocks: (0..cfg.layers)
                .map(|_| Block::random(cfg, device))
                .collect(),
            ln_post: Norm::new(Tensor::ones([w], device), Tensor::zeros([w], device)),
            proj: Param::from_tensor(normal([w, cfg.output_dim], w, device)),
            patch: p,
            width: w,
            heads: cfg.heads,
            quick_gelu: cfg.activation == Activation::QuickGelu,
            ln_eps: cfg.ln_eps,
        }
    }

    /// Preprocessed images `[batch, 3, size, size]` → embeddings `[batch, output_dim]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let [batch, _, _, _] = images.dims();
        let w = self.width;
        let patches = conv2d(
            images,
            wide(&self.conv1),
            None,
            ConvOptions::new([self.patch, self.patch], [0, 0], [1, 1], 1),
        ); // [batch, width, grid, grid]
        let [_, _, gh, gw] = patches.dims();
        let patches: Tensor<3> = patches.reshape([batch, w, gh * gw]).swap_dims(1, 2); // [batch, grid², width]
        let cls = self
            .class_embedding
            .val()
            .reshape([1, 1, w])
            .expand([batch, 1, w]); // [batch, 1, width]
        let tokens = gh * gw + 1;
        let x =
            Tensor::cat(vec![cls, patches], 1) + self.positional_embedding.val().unsqueeze::<3>(); // [batch, tokens, width]
        let x = self.ln_pre.forward(x, self.ln_eps);
        let mut x: Tensor<2> = x.reshape([batch * tokens, w]);
        for block in &self.blocks {
            x = block.forward(x, self, batch, tokens);
        }
        let cls: Tensor<2> = x
            .reshape([batch, tokens, w])
            .narrow(1, 0, 1)
            .reshape([batch, w]); // [batch, width]
        self.ln_post
            .forward(cls, self.ln_eps)
            .matmul(wide(&self.proj)) // [batch, output_dim]
    }
}
