//! Parity with PyTorch for the notebook's three autoencoders: bilinear upsampling,
//! LayerNorm and leaky ReLU, the conv autoencoder in eval and train mode, the MLP
//! autoencoder, and the tied linear autoencoder's MSE loss and gradients, against
//! values that `scripts/make_ae_fixtures.py` computed with torch. Also parameter
//! counts and the initialisation bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::LayerNormConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::leaky_relu;
use replab::model::autoencoder::conv::upsample;
use replab::model::autoencoder::mlp::LEAKY_SLOPE;
use replab::model::autoencoder::{
    Autoencoder, ConvAeConfig, LinearAeConfig, MlpAeConfig, mse, num_trainable_params,
};
mod common;
use common::fixture::{assert_close, state_dict, tensor, vec_of};
use replab::model::safetensors::SafeTensors;
use replab::platform::cpu_device;

const FIXTURE: &[u8] = include_bytes!("fixtures/ae_parity.safetensors");

fn fixture() -> SafeTensors<'static> {
    SafeTensors::parse(FIXTURE).unwrap()
}

#[test]
fn bilinear_upsample_matches_torch_without_aligned_corners() {
    let st = fixture();
    let device = cpu_device();
    let x: Tensor<4> = tensor(&st, "upsample.size.in", &device);
    let y = upsample(Some([7, 7])).forward(x); // [2, 3, 7, 7]
    assert_close("upsample to 7x7", y, &st, "upsample.size.out");
    let x: Tensor<4> = tensor(&st, "upsample.scale.in", &device);
    let y = upsample(None).forward(x); // [2, 3, 14, 14]
    assert_close("upsample x2", y, &st, "upsample.scale.out");
}

#[test]
fn layer_norm_and_leaky_relu_match_torch() {
    let st = fixture();
    let device = cpu_device();
    let mut ln = LayerNormConfig::new(24).init(&device);
    ln.gamma = Param::from_tensor(tensor(&st, "layernorm.weight", &device));
    ln.beta = Some(Param::from_tensor(tensor(&st, "layernorm.bias", &device)));
    let x: Tensor<2> = tensor(&st, "layernorm.in", &device);
    assert_close("layernorm", ln.forward(x.clone()), &st, "layernorm.out");
    assert_close(
        "leaky_relu",
        leaky_relu(x, LEAKY_SLOPE),
        &st,
        "leaky_relu.out",
    );
}

#[test]
fn conv_autoencoder_matches_torch_in_eval_mode() {
    let st = fixture();
    let device = cpu_device();
    let model = ConvAeConfig::new(3)
        .init(&device)
        .load_torch(&state_dict(&st, "conv"), &device)
        .unwrap();
    let x: Tensor<4> = tensor(&st, "input.x", &device);
    assert_close(
        "conv latent",
        model.encode(x.clone()),
        &st,
        "conv.eval.latent",
    );
    assert_close("conv recon", model.reconstruct(x), &st, "conv.eval.recon");
}

#[test]
fn conv_autoencoder_matches_torch_in_train_mode() {
    let st = fixture();
    let device = cpu_device().autodiff();
    let model = ConvAeConfig::new(3)
        .init(&device)
        .load_torch(&state_dict(&st, "conv"), &device)
        .unwrap();
    let x: Tensor<4> = tensor(&st, "input.x", &device);
    assert_close(
        "conv train recon",
        model.reconstruct(x),
        &st,
        "conv.train.recon",
    );
    let bns = model.batch_norms();
    assert_eq!(bns.len(), 5);
    assert_close(
        "conv_blocks.0 running_var",
        bns[0].running_var.value_sync(),
        &st,
        "conv.train.after.conv_blocks.0.running_var",
    );
    assert_close(
        "deconv_blocks.1 running_mean",
        bns[4].running_mean.value_sync(),
        &st,
        "conv.train.after.deconv_blocks.1.running_mean",
    );
}

#[test]
fn mlp_autoencoder_matches_torch() {
    let st = fixture();
    let device = cpu_device();
    let model = MlpAeConfig::new(3 * 28 * 28)
        .with_latent_dim(16)
        .with_widths(vec![48, 32])
        .init(&device)
        .load_torch(&state_dict(&st, "mlp"), &device)
        .unwrap();
    let x: Tensor<4> = tensor(&st, "input.x", &device);
    assert_close("mlp latent", model.encode(x.clone()), &st, "mlp.latent");
    assert_close("mlp recon", model.reconstruct(x), &st, "mlp.recon");
}

#[test]
fn linear_autoencoder_loss_and_gradients_match_torch() {
    let st = fixture();
    for (name, bias) in [("linear", false), ("linear_bias", true)] {
        let device = cpu_device().autodiff();
        let model = LinearAeConfig::new(3 * 28 * 28, 8)
            .with_bias(bias)
            .init(&device)
            .load_torch(&state_dict(&st, name), &device)
            .unwrap();
        assert_close(
            &format!("{name} weight"),
            model.weight(),
            &st,
            &format!("{name}.encoder.weight"),
        );
        let x: Tensor<4> = tensor(&st, "input.x", &device);
        assert_close(
            &format!("{name} latent"),
            model.encode(x.clone()),
            &st,
            &format!("{name}.latent"),
        );
        let loss = mse(model.reconstruct(x.clone()), x);
        let grads = loss.backward();
        assert_close(
            &format!("{name} loss"),
            loss.detach(),
            &st,
            &format!("{name}.loss"),
        );
        // burn keeps the weight as [input, latent]; PyTorch's gradient is [latent, input].
        let gw = model.encoder().weight.val().grad(&grads).unwrap();
        assert_close(
            &format!("{name} weight grad"),
            gw.transpose(),
            &st,
            &format!("{name}.grad.encoder.weight"),
        );
        if bias {
            let b = model.encoder().bias.as_ref().unwrap();
            assert_close(
                &format!("{name} bias grad"),
                b.val().grad(&grads).unwrap(),
                &st,
                &format!("{name}.grad.encoder.bias"),
            );
        } else {
            assert!(model.bias().is_none());
        }
    }
}

fn torch_count(st: &SafeTensors, key: &str) -> usize {
    st.metadata()[&format!("params.{key}")].parse().unwrap()
}

#[test]
fn parameter_counts_match_torch() {
    let st = fixture();
    let device = cpu_device();
    for c in [1, 3] {
        let d = c * 28 * 28;
        let conv = ConvAeConfig::new(c).init(&device);
        assert_eq!(
            num_trainable_params(&conv),
            torch_count(&st, &format!("conv.c{c}"))
        );
        let mlp = MlpAeConfig::new(d).init(&device);
        assert_eq!(
            num_trainable_params(&mlp),
            torch_count(&st, &format!("mlp.c{c}"))
        );
        let lin = LinearAeConfig::new(d, 128).init(&device);
        assert_eq!(
            num_trainable_params(&lin),
            torch_count(&st, &format!("linear.c{c}"))
        );
        let lin = LinearAeConfig::new(d, 128).with_bias(true).init(&device);
        assert_eq!(
            num_trainable_params(&lin),
            torch_count(&st, &format!("linear_bias.c{c}"))
        );
    }
    // burn's own count adds the BatchNorm running means and variances (buffers in PyTorch).
    let conv = ConvAeConfig::new(3).init(&device);
    let running = 2 * (32 + 64 + 128 + 64 + 32);
    assert_eq!(conv.num_params(), num_trainable_params(&conv) + running);
    let conv = conv.reset_head(5, &device);
    assert_eq!(
        num_trainable_params(&conv),
        torch_count(&st, "conv.c3.head5")
    );
    let mlp = MlpAeConfig::new(3 * 28 * 28)
        .init(&device)
        .reset_head(5, &device);
    assert_eq!(num_trainable_params(&mlp), torch_count(&st, "mlp.c3.head5"));
}

fn check_shapes<M: Autoencoder>(model: M, x: Tensor<4>, latent: usize, device: &Device) {
    let [b, c, h, w] = x.dims();
    assert_eq!(model.latent_dim(), latent);
    assert_eq!(model.encode(x.clone()).dims(), [b, latent]);
    assert_eq!(model.reconstruct(x.clone()).dims(), [b, c, h, w]);
    let z = Tensor::<2>::zeros([b, latent], device);
    assert_eq!(model.decode(z, [c, h, w]).dims(), [b, c, h, w]);
    assert!(model.classifier().is_none());
    assert!(model.classify(x.clone()).is_none());
    let model = model.reset_head(7, device);
    assert_eq!(model.classifier().unwrap().weight.val().dims(), [latent, 7]);
    assert_eq!(model.classify(x).unwrap().dims(), [b, 7]);
}

#[test]
fn full_size_models_have_the_notebook_shapes() {
    let device = cpu_device();
    for c in [1, 3] {
        let x = Tensor::<4>::random([2, c, 28, 28], Distribution::Default, &device);
        check_shapes(ConvAeConfig::new(c).init(&device), x.clone(), 128, &device);
        check_shapes(
            MlpAeConfig::new(c * 784).init(&device),
            x.clone(),
            128,
            &device,
        );
        let lin = LinearAeConfig::new(c * 784, 128).init(&device);
        assert_eq!(lin.weight().dims(), [128, c * 784]);
        check_shapes(lin, x, 128, &device);
    }
}

/// Every float parameter (running statistics included) with its path and values.
#[derive(Default)]
struct Collect {
    path: Vec<String>,
    params: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        self.params
            .push((self.path.join("."), t.dims().to_vec(), vec_of(t)));
    }
}

/// PyTorch's defaults: dense and conv weights and biases in `U(±1/√fan_in)` (and
/// spread over most of that range), norm scales 1 and shifts 0.
fn check_init<M: Module>(model: &M) {
    let mut c = Collect::default();
    model.visit(&mut c);
    let params = c.params;
    assert!(!params.is_empty());
    let fan_in = |prefix: &str| -> usize {
        let (_, dims, _) = params
            .iter()
            .find(|(p, _, _)| *p == format!("{prefix}.weight"))
            .unwrap();
        match dims.len() {
            2 => dims[0],                     // burn's Linear: [in, out]
            4 => dims[1] * dims[2] * dims[3], // [out, in, kh, kw]
            _ => panic!("{prefix}: unexpected weight {dims:?}"),
        }
    };
    for (path, dims, v) in &params {
        let (prefix, field) = path.rsplit_once('.').unwrap();
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if field == "gamma" || field == "running_var" {
            assert!(v.iter().all(|&x| x == 1.0), "{path}");
        } else if field == "beta" || field == "running_mean" {
            assert!(v.iter().all(|&x| x == 0.0), "{path}");
        } else {
            let bound = 1.0 / (fan_in(prefix) as f32).sqrt();
            assert!(max <= bound, "{path} {dims:?}: {max} > {bound}");
            if v.len() >= 100 {
                assert!(max > 0.9 * bound, "{path} {dims:?}: {max} ≪ {bound}");
            }
        }
    }
}

#[test]
fn initialisation_follows_pytorch_defaults() {
    let device = cpu_device();
    check_init(&ConvAeConfig::new(3).init(&device).reset_head(10, &device));
    check_init(&MlpAeConfig::new(784).init(&device).reset_head(10, &device));
    check_init(&LinearAeConfig::new(784, 16).with_bias(true).init(&device));
}
