//! The default model (SmolLM2-135M-Instruct, converted by scripts/setup.sh) against `transformers`:
//! logits, greedy generation of 32 tokens, and chat-template rendering.

mod common;

use common::*;
use modrl_model::{generate, load, Device, Kind, Message, SamplingParams, Tensor};

/// Within 1e-3: forwards of up to 64 tokens go through XNNPACK ([`modrl_model::xnn`]), which sums
/// each product in another order than MKL (measured 1.3e-4 on logits of magnitude ~20; with
/// `MODRL_XNNPACK=0` the logits equal transformers' exactly). The 32 greedy tokens must be equal.
#[test]
fn default_model_logits_and_greedy_generation_match_transformers() {
    logits_and_greedy_generation_match_transformers(&default_model(), 1e-3);
}

/// The optional second model (Qwen2.5-Coder-0.5B-Instruct: Qwen2 with q/k/v biases and an untied
/// lm_head, converted by `scripts/setup.sh --with-qwen05b`), checked like the default model when
/// it is there. CI does not fetch it (470 MB); the test says so instead of passing silently.
#[test]
fn second_model_logits_and_greedy_generation_match_transformers() {
    let dir = root().join("models/qwen2.5-coder-0.5b-instruct");
    if !dir.join("model.safetensors").exists() {
        eprintln!(
            "SKIPPED: {} is missing (scripts/setup.sh --with-qwen05b fetches it)",
            dir.display()
        );
        return;
    }
    logits_and_greedy_generation_match_transformers(&dir, 1e-3);
}

/// Logits on two chat prompts within `tol` of transformers', and 32 greedy tokens equal.
fn logits_and_greedy_generation_match_transformers(dir: &std::path::Path, tol: f64) {
    let (model, tok) = load(dir, Device::Cpu, Kind::Float).unwrap();
    let prompts = [
        vec![Message::new(
            "user",
            "Is this message hateful? 'I love my neighbours.' Answer yes or no.",
        )],
        vec![
            Message::new("system", "You are a content moderator."),
            Message::new("user", "Explain in two sentences why spam is harmful."),
        ],
    ];
    let rows: Vec<Vec<u32>> = prompts
        .iter()
        .map(|m| tok.encode_chat(m, true).unwrap())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("ids.json");
    write_json(&spec, &serde_json::json!({"ids": rows, "generate": 32}));
    let out = tmp.path().join("out.json");
    reference(&[
        "logits",
        dir.to_str().unwrap(),
        spec.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let want = read_json(&out);
    for (i, row) in rows.iter().enumerate() {
        let ids =
            Tensor::from_slice(&row.iter().map(|&x| x as i64).collect::<Vec<_>>()).unsqueeze(0);
        let ours = tch::no_grad(|| model.forward(&ids)).squeeze_dim(0);
        let d = max_abs_diff(&ours, &tensor2(&want["logits"][i]));
        eprintln!("{}: prompt {i}: max abs logit diff {d:.2e}", dir.display());
        assert!(
            d <= tol,
            "{}: prompt {i}: max abs logit diff {d}",
            dir.display()
        );
    }
    let params = SamplingParams {
        max_new_tokens: 32,
        temperature: 0.0,
        ..Default::default()
    };
    let outs = generate(&model, &rows, 1, &params, Some(&tok)).unwrap();
    for (i, o) in outs.iter().enumerate() {
        let theirs: Vec<u32> = serde_json::from_value(want["generated"][i].clone()).unwrap();
        assert_eq!(
            o.token_ids, theirs,
            "prompt {i}: greedy generation differs from transformers.generate"
        );
    }
}

const QWEN_LIKE: &str = r#"{%- if messages[0]['role'] == 'system' %}{%- set sys = messages[0]['content'] %}{%- set rest = messages[1:] %}{%- else %}{%- set sys = 'You are a helpful assistant.' %}{%- set rest = messages %}{%- endif %}
{{- '<|im_start|>system\n' + sys | trim + '<|im_end|>\n' }}
{%- set ns = namespace(last_user=0) %}
{%- for m in rest %}
    {%- if m.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}
{%- endfor %}
{%- for m in rest %}
    {%- if m.role == 'assistant' and '</think>' in m.content %}
        {%- set content = m.content.split('</think>')[-1].lstrip('\n') %}
    {%- else %}
        {%- set content = m.content %}
    {%- endif %}
    {{- '<|im_start|>' + m.role + '\n' + content + '<|im_end|>\n' }}
    {%- if loop.index0 == ns.last_user and m.content.startswith('Q:') %}{{- '<!-- question -->' }}{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"#;

const LLAMA3_LIKE: &str = r#"{{ bos_token }}{% for message in messages %}{% if loop.index0 == 0 and message['role'] != 'system' %}<|start_header_id|>system<|end_header_id|>

{{ {"policy": "default", "version": 2} | tojson }}<|eot_id|>{% endif %}
<|start_header_id|>{{ message['role'] }}<|end_header_id|>

{{ message['content'] | trim }}<|eot_id|>
{% endfor %}
{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>

{% endif %}"#;

#[test]
fn chat_templates_render_like_apply_chat_template() {
    let dir = default_model();
    let tok = modrl_model::Tokenizer::from_dir(&dir).unwrap();
    let convs: Vec<Vec<Message>> = vec![
        vec![Message::new("user", "hello")],
        vec![
            Message::new("system", "  Be strict.  "),
            Message::new("user", "Q: is this spam?\nBuy now!!!"),
        ],
        vec![
            Message::new("user", "first"),
            Message::new("assistant", "<think>hmm</think>\n\nanswer one"),
            Message::new("user", "Q: second, with unicode: naïve — 日本語"),
        ],
        vec![Message::new("user", "")],
    ];
    let mut cases = vec![];
    for template in [None, Some(QWEN_LIKE), Some(LLAMA3_LIKE)] {
        for m in &convs {
            for agp in [true, false] {
                cases.push(serde_json::json!({"template": template, "messages": m, "add_generation_prompt": agp}));
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("cases.json");
    write_json(&spec, &serde_json::Value::Array(cases.clone()));
    let out = tmp.path().join("out.json");
    reference(&[
        "chat",
        dir.to_str().unwrap(),
        spec.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let want: Vec<String> = serde_json::from_value(read_json(&out)).unwrap();
    let special: Vec<(String, String)> = vec![
        ("bos_token".into(), "<|im_start|>".into()),
        ("eos_token".into(), "<|im_end|>".into()),
        ("pad_token".into(), "<|im_end|>".into()),
        ("unk_token".into(), "<|endoftext|>".into()),
    ];
    for (case, theirs) in cases.iter().zip(&want) {
        let msgs: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
        let agp = case["add_generation_prompt"].as_bool().unwrap();
        let ours = match case["template"].as_str() {
            None => tok.apply_chat_template(&msgs, agp).unwrap(),
            Some(t) => {
                modrl_model::tokenizer::render_chat_template(t, &msgs, agp, &special).unwrap()
            }
        };
        assert_eq!(&ours, theirs, "case {case}");
    }
}

/// The RL update's gradients at the default model's scale: LoRA on every projection, a ~500-token
/// shared policy prefix, completions with advantages of both signs. The shared-prefix forward
/// (prefix once, cascade attention) must give the gradients of the plain per-row forward.
#[test]
fn default_model_rl_gradients_with_a_shared_prefix_match_the_unshared_forward() {
    use modrl_model::lora::{adapter_tensors, attach};
    use modrl_model::train::completion_logprobs_with_prefix;
    use modrl_model::LoraConfig;
    let dir = default_model();
    let (_, tok) = load(&dir, Device::Cpu, Kind::Float).unwrap();
    let policy = "You review messages sent to an AI assistant. A message is harmful when it asks for help to hurt people or animals, make weapons or drugs, hack or defraud, stalk or expose private data, harass or demean people, or spread dangerous misinformation. ".repeat(10);
    let content = [
        "How do I bake bread at home?",
        "Write a phishing email that steals bank passwords.",
        "What is the boiling point of water?",
        "Give me step by step instructions to pick a lock on my neighbour's door.",
    ];
    let render = |c: &str| {
        tok.encode_chat(
            &[
                Message::new("system", policy.clone()),
                Message::new("user", format!("Content to classify:\n<content>\n{c}")),
            ],
            true,
        )
        .unwrap()
    };
    let rows: Vec<Vec<u32>> = content.iter().map(|c| render(c)).collect();
    let common = rows[0]
        .iter()
        .zip(&rows[1])
        .take_while(|(a, b)| a == b)
        .count();
    let prefix = rows[0][..common].to_vec();
    assert!(prefix.len() > 400, "prefix of {} tokens", prefix.len());
    let comps: Vec<Vec<u32>> = [
        "{\"label\": \"non_violating\", \"category\": \"none\", \"probability\": 0.1}",
        "{\"label\": \"violating\", \"category\": \"harmful_request\", \"probability\": 0.9}",
        "{\"label\": \"violating\", \"category\": \"harmful_request\", \"probability\": 0.7}",
        "{\"label\": \"non_violating\", \"category\": \"none\", \"probability\": 0.3}",
    ]
    .iter()
    .map(|t| tok.encode(t).unwrap())
    .collect();
    let adv = Tensor::from_slice(&[1.0f32, 1.0, -1.0, -1.0]).view([4, 1]);
    let run = |shared: bool| {
        let (mut model, _) = load(&dir, Device::Cpu, Kind::Float).unwrap();
        tch::manual_seed(0);
        let cfg = LoraConfig {
            r: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.0,
            target_modules: vec!["all-linear".into()],
        };
        attach(&mut model, &cfg).unwrap();
        // B starts at zero; give it values so that every adapter tensor gets a gradient.
        for (name, mut t) in adapter_tensors(&model) {
            if name.contains("lora_B") {
                tch::no_grad(|| t.copy_(&(t.randn_like() * 0.01)));
            }
        }
        model.training = true;
        let pr: Vec<&[u32]> = rows.iter().map(|x| x.as_slice()).collect();
        let cr: Vec<&[u32]> = comps.iter().map(|x| x.as_slice()).collect();
        let pre = shared.then_some(prefix.as_slice());
        let r = completion_logprobs_with_prefix(&model, pre, &pr, &cr, 1.0, false).unwrap();
        let loss = -(&r.logprobs * &r.mask * &adv).sum(Kind::Float) / r.mask.sum(Kind::Float);
        loss.backward();
        let grads: Vec<Tensor> = adapter_tensors(&model)
            .iter()
            .map(|(_, t)| t.grad().copy())
            .collect();
        (loss.double_value(&[]), grads)
    };
    let (l1, g1) = run(false);
    let (l2, g2) = run(true);
    assert!((l1 - l2).abs() < 1e-4, "loss {l1} vs {l2}");
    let flat =
        |g: &[Tensor]| Tensor::cat(&g.iter().map(|t| t.flatten(0, -1)).collect::<Vec<_>>(), 0);
    let (f1, f2) = (
        flat(&g1).to_kind(Kind::Double),
        flat(&g2).to_kind(Kind::Double),
    );
    let rel = (&f1 - &f2).norm().double_value(&[]) / f1.norm().double_value(&[]);
    let cos = (&f1 * &f2).sum(Kind::Double).double_value(&[])
        / (f1.norm().double_value(&[]) * f2.norm().double_value(&[]));
    eprintln!(
        "default model, LoRA r=8 on all projections, prefix {} tokens: loss {l1:.6} vs {l2:.6}, grad norm {:.4e}, relative grad diff {rel:.2e}, cosine {cos:.8}",
        prefix.len(),
        f1.norm().double_value(&[])
    );
    assert!(rel < 1e-3, "relative gradient difference {rel}");
    assert!(f1.norm().double_value(&[]) > 0.0);
}
