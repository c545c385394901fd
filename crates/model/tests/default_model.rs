//! The default model (SmolLM2-135M-Instruct, converted by scripts/setup.sh) against `transformers`:
//! logits, greedy generation of 32 tokens, and chat-template rendering.

mod common;

use common::*;
use modrl_model::{generate, load, Device, Kind, Message, SamplingParams, Tensor};

#[test]
fn default_model_logits_and_greedy_generation_match_transformers() {
    let dir = default_model();
    let (model, tok) = load(&dir, Device::Cpu, Kind::Float).unwrap();
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
        assert!(d <= 1e-4, "prompt {i}: max abs logit diff {d}");
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
