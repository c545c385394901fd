use super::*;
use crate::openai::fake_server::start;
use modrl_moderation::verdict::format_output;
use std::sync::Mutex;

fn policy() -> Policy {
    crate::test_util::policy("hate-speech")
}

fn v(label: Label, category: Option<&str>, p: f64) -> Verdict {
    Verdict {
        label,
        category: category.map(String::from),
        probability: p,
    }
}

fn words(n: usize) -> String {
    vec!["word"; n].join(" ")
}

const CONTENT: &str = "Those people are vermin and should be removed from our city.";

fn input<'a>(completion: &'a str, label: u8, policy: &'a Policy) -> RewardInput<'a> {
    RewardInput {
        content: CONTENT,
        label,
        categories: &[],
        completion,
        rationale: None,
        policy,
    }
}

fn good_violating() -> String {
    format_output(
        "The post calls a group \"vermin\", which is dehumanization.",
        &v(Label::Violating, Some("dehumanization"), 0.93),
    )
}

#[test]
fn accuracy_rewards_correct_labels_and_charges_errors() {
    let p = policy();
    let viol = good_violating();
    let safe = format_output("Nothing hateful.", &v(Label::NonViolating, None, 0.1));
    let junk = "I refuse to answer.";
    let bad_cat = "<reasoning>x</reasoning>\n{\"label\": \"violating\", \"category\": \"spam\", \"probability\": 0.9}";
    let r = Accuracy {
        fn_cost: 2.0,
        fp_cost: 0.5,
    };
    let batch = [
        input(&viol, 1, &p),   // true positive
        input(&safe, 0, &p),   // true negative
        input(&safe, 1, &p),   // false negative
        input(&viol, 0, &p),   // false positive
        input(junk, 1, &p),    // no verdict
        input(bad_cat, 1, &p), // unknown category: does not parse
    ];
    assert_eq!(r.score(&batch).unwrap(), [1.0, 1.0, -2.0, -0.5, 0.0, 0.0]);
    assert_eq!(
        Accuracy::default().score(&batch).unwrap(),
        [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert!(r.score(&[input(&viol, 2, &p)]).is_err());
}

#[test]
fn format_gives_full_and_partial_credit() {
    let p = policy();
    let cases: Vec<(String, f64)> = vec![
            (good_violating(), 1.0),
            ("no verdict here".into(), 0.0),
            // Bare verdict: parses, last, consistent; no reasoning.
            (
                v(Label::NonViolating, None, 0.2).to_json_line(),
                FORMAT_PARSES + FORMAT_LAST + FORMAT_CONSISTENT,
            ),
            // Text after the verdict.
            (format!("{}\nHope this helps!", good_violating()), 0.85),
            // Inconsistent: violating with probability 0.3.
            (
                format_output("It is hateful.", &v(Label::Violating, Some("slurs"), 0.3)),
                0.85,
            ),
            // Violating without a category.
            (
                format_output("It is hateful.", &v(Label::Violating, None, 0.8)),
                0.85,
            ),
            // Unclosed reasoning (truncated), verdict inside it.
            (
                "<reasoning>It is hateful. {\"label\": \"violating\", \"category\": \"slurs\", \"probability\": 0.9}"
                    .into(),
                FORMAT_PARSES + FORMAT_LAST + FORMAT_CONSISTENT,
            ),
            // Empty reasoning block.
            (
                format!(
                    "<reasoning> </reasoning>\n{}",
                    v(Label::NonViolating, None, 0.1).to_json_line()
                ),
                0.7,
            ),
            // Good reasoning, malformed verdict.
            (
                "<reasoning>Fine.</reasoning>\n{\"label\": \"violating\", \"probability\": 0.9".into(),
                FORMAT_REASONING,
            ),
        ];
    for (text, want) in &cases {
        let got = Format::score_one(text, &p);
        assert!((got - want).abs() < 1e-12, "{text:?}: {got} vs {want}");
    }
    let batch: Vec<RewardInput> = cases.iter().map(|(t, _)| input(t, 1, &p)).collect();
    assert_eq!(Format::default().score(&batch).unwrap().len(), cases.len());
}

#[test]
fn format_without_reasoning_wants_the_bare_verdict() {
    let p = policy();
    let f = Format { reasoning: false };
    let line = v(Label::Violating, Some(p.category_names()[0].as_str()), 0.9).to_json_line();
    assert!((f.score_text(&line, &p) - 1.0).abs() < 1e-12, "{line}");
    assert!(!instruction_hallucination_for(&line, &p, false));
    assert!(instruction_hallucination_for(&line, &p, true));
    // Text before the verdict loses the 0.30; a broken verdict earns nothing for it.
    let chatty = format!("Sure! {line}");
    assert!((f.score_text(&chatty, &p) - (1.0 - FORMAT_REASONING)).abs() < 1e-12);
    assert_eq!(f.score_text("{\"label\": \"maybe", &p), 0.0);
    // The reasoned contract is unchanged.
    assert!((Format::default().score_text(&line, &p) - 0.7).abs() < 1e-12);
}

#[test]
fn length_band_and_falloff() {
    let l = Length::default();
    assert_eq!(l.of_words(0), 0.0);
    assert_eq!(l.of_words(60), 0.5);
    assert_eq!(l.of_words(120), 1.0);
    assert_eq!(l.of_words(320), 1.0);
    assert_eq!(l.of_words(480), 0.5);
    assert_eq!(l.of_words(640), 0.0);
    assert_eq!(l.of_words(5000), 0.0);
    let p = policy();
    let verdict_line = v(Label::NonViolating, None, 0.1);
    let c40 = format_output(&words(40), &verdict_line);
    let c200 = format_output(&words(200), &verdict_line);
    let got = l.score(&[input(&c40, 0, &p), input(&c200, 0, &p)]).unwrap();
    assert!((got[0] - 40.0 / 120.0).abs() < 1e-12, "{got:?}");
    assert_eq!(got[1], 1.0);
}

/// A judge that grades by reasoning length and records what it was asked.
struct FakeJudge {
    seen: Mutex<Vec<JudgeItem>>,
}

impl Judge for FakeJudge {
    fn score(&self, items: &[JudgeItem]) -> Result<Vec<JudgeScore>> {
        self.seen.lock().unwrap().extend(items.iter().cloned());
        Ok(items
            .iter()
            .map(|it| JudgeScore {
                score: (verdict::word_count(&it.reasoning) as f64 / 10.0).min(1.0),
                invented_facts: Some(false),
                parsed: true,
                raw: String::new(),
            })
            .collect())
    }
}

#[test]
fn rubric_sends_only_judgeable_items_and_keeps_order() {
    let p = policy();
    let judge = std::sync::Arc::new(FakeJudge {
        seen: Mutex::new(vec![]),
    });
    struct Shared(std::sync::Arc<FakeJudge>);
    impl Judge for Shared {
        fn score(&self, items: &[JudgeItem]) -> Result<Vec<JudgeScore>> {
            self.0.score(items)
        }
    }
    let r = Rubric::new(Box::new(Shared(judge.clone())));
    let five = format_output(&words(5), &v(Label::NonViolating, None, 0.1));
    let bare = v(Label::NonViolating, None, 0.1).to_json_line();
    let junk = "<reasoning>long reasoning here</reasoning> but no verdict";
    let twenty = format_output(&words(20), &v(Label::Violating, Some("slurs"), 0.9));
    let batch = [
        input(&five, 0, &p),
        input(&bare, 0, &p),
        input(junk, 0, &p),
        input(&twenty, 1, &p),
    ];
    assert_eq!(r.score(&batch).unwrap(), [0.5, 0.0, 0.0, 1.0]);
    let seen = judge.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].reasoning, words(5));
    assert_eq!(seen[0].content, CONTENT);
    assert_eq!(seen[0].verdict_label, Label::NonViolating);
    assert_eq!(seen[1].verdict_label, Label::Violating);
    assert_eq!(seen[0].policy_text, p.render());
}

#[test]
fn a_judge_that_parses_nothing_is_logged_and_stops_the_run() {
    /// Parses its answers only while `parse` is set.
    struct Flaky(std::sync::atomic::AtomicBool);
    impl Judge for Flaky {
        fn score(&self, items: &[JudgeItem]) -> Result<Vec<JudgeScore>> {
            let parsed = self.0.load(std::sync::atomic::Ordering::SeqCst);
            Ok(items
                .iter()
                .map(|_| JudgeScore {
                    score: if parsed { 0.8 } else { 0.0 },
                    invented_facts: None,
                    parsed,
                    raw: "no rubric here".into(),
                })
                .collect())
        }
    }
    let p = policy();
    let judged = format_output(&words(8), &v(Label::NonViolating, None, 0.1));
    let bare = v(Label::NonViolating, None, 0.1).to_json_line();
    let batch = [input(&judged, 0, &p), input(&judged, 0, &p)];
    let flaky = std::sync::Arc::new(Flaky(true.into()));
    struct Shared(std::sync::Arc<Flaky>);
    impl Judge for Shared {
        fn score(&self, items: &[JudgeItem]) -> Result<Vec<JudgeScore>> {
            self.0.score(items)
        }
    }
    let r = Rubric::with_limit(Box::new(Shared(flaky.clone())), 2);
    assert_eq!(r.score(&batch).unwrap(), [0.8, 0.8]);
    assert_eq!(
        r.metrics(),
        vec![
            ("judge/judged".into(), 2.0),
            ("judge/parsed_fraction".into(), 1.0)
        ]
    );
    flaky.0.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(r.score(&batch).unwrap(), [0.0, 0.0]);
    assert_eq!(r.metrics()[1], ("judge/parsed_fraction".into(), 0.0));
    // A call with nothing to judge neither counts nor resets the streak.
    assert_eq!(r.score(&[input(&bare, 0, &p)]).unwrap(), [0.0]);
    assert_eq!(r.metrics(), vec![("judge/judged".into(), 0.0)]);
    let e = r.score(&batch).unwrap_err().to_string();
    assert!(
        e.contains("parsed none of its answers in 2 reward calls"),
        "{e}"
    );
    assert!(e.contains("max_unparsed_steps"), "{e}");
    // Parsing again resets the streak; a limit of 0 never stops.
    flaky.0.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(r.score(&batch).is_ok());
    flaky.0.store(false, std::sync::atomic::Ordering::SeqCst);
    let never = Rubric::with_limit(Box::new(Shared(flaky.clone())), 0);
    for _ in 0..5 {
        assert!(never.score(&batch).is_ok());
    }
}

fn sh(script: &str) -> External {
    External {
        name: "ext".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        timeout: Duration::from_secs(20),
    }
}

#[test]
fn external_reads_one_number_per_input_line() {
    let p = policy();
    let c = good_violating();
    // Scores 1 for inputs whose JSON says label 1, else 0.25: proves it gets the JSON lines.
    let r = sh(
        r#"while IFS= read -r l; do case "$l" in *'"label":1'*) echo 1;; *) echo 0.25;; esac; done"#,
    );
    let got = r
        .score(&[input(&c, 1, &p), input(&c, 0, &p), input(&c, 1, &p)])
        .unwrap();
    assert_eq!(got, [1.0, 0.25, 1.0]);
    assert_eq!(r.name(), "ext");
    assert!(r.score(&[]).unwrap().is_empty());
}

#[test]
fn external_errors_name_the_command_and_line() {
    let p = policy();
    let c = good_violating();
    let two = [input(&c, 1, &p), input(&c, 0, &p)];
    let e = format!(
        "{:#}",
        sh("cat >/dev/null; echo 1; echo oops")
            .score(&two)
            .unwrap_err()
    );
    assert!(
        e.contains("line 2") && e.contains("oops") && e.contains("sh -c"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        sh("cat >/dev/null; echo 1").score(&two).unwrap_err()
    );
    assert!(e.contains("printed 1 numbers for 2 inputs"), "{e}");
    let e = format!(
        "{:#}",
        sh("cat >/dev/null; echo broken model >&2; exit 3")
            .score(&two)
            .unwrap_err()
    );
    assert!(e.contains("broken model") && e.contains("failed"), "{e}");
    let mut slow = sh("sleep 5");
    slow.timeout = Duration::from_millis(200);
    let e = format!("{:#}", slow.score(&two).unwrap_err());
    assert!(e.contains("did not finish"), "{e}");
    let missing = External {
        name: "gone".into(),
        command: vec!["/nonexistent/modrl-reward".into()],
        timeout: Duration::from_secs(5),
    };
    let e = format!("{:#}", missing.score(&two).unwrap_err());
    assert!(
        e.contains("cannot start `/nonexistent/modrl-reward`"),
        "{e}"
    );
}

#[test]
fn http_reward_posts_inputs_and_reads_scores() {
    let srv = start(|r| {
        let b = r.json();
        let scores: Vec<f64> = b["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["label"].as_f64().unwrap() * 0.5)
            .collect();
        (200, json!({"scores": scores}).to_string())
    });
    let p = policy();
    let c = good_violating();
    let r = Http::new(
        "svc",
        &format!("{}/score", srv.url),
        Duration::from_secs(10),
    )
    .unwrap();
    let got = r.score(&[input(&c, 1, &p), input(&c, 0, &p)]).unwrap();
    assert_eq!(got, [0.5, 0.0]);
    let req = srv.requests.lock().unwrap()[0].clone();
    assert_eq!(req.path, "/score");
    let first = &req.json()["inputs"][0];
    assert_eq!(first["content"], CONTENT);
    assert_eq!(first["completion"], c);
    assert_eq!(first["policy_id"], "hate-speech");
    assert!(first["rationale"].is_null());
}

#[test]
fn http_reward_rejects_bad_answers() {
    let srv = start(|r| match r.path.as_str() {
        "/short" => (200, "{\"scores\": [1]}".into()),
        "/nan" => (200, "{\"scores\": [1, \"x\"]}".into()),
        _ => (503, "{\"error\": {\"message\": \"overloaded\"}}".into()),
    });
    let p = policy();
    let c = good_violating();
    let two = [input(&c, 1, &p), input(&c, 0, &p)];
    let call = |path: &str| {
        let r = Http::new(
            "svc",
            &format!("{}{path}", srv.url),
            Duration::from_secs(10),
        )
        .unwrap();
        format!("{:#}", r.score(&two).unwrap_err())
    };
    assert!(call("/short").contains("1 scores for 2 inputs"));
    assert!(call("/nan").contains("score 1 is not a finite number"));
    let e = call("/down");
    assert!(
        e.contains("HTTP 503") && e.contains("overloaded") && e.contains("svc"),
        "{e}"
    );
}

#[test]
fn build_rewards_from_toml() {
    let cfg: RewardsConfig = toml::from_str("").unwrap();
    assert_eq!(cfg, RewardsConfig::default());
    let rs = build_rewards(&cfg, true).unwrap();
    let names: Vec<(&str, f64)> = rs.iter().map(|(w, r)| (r.name(), *w)).collect();
    assert_eq!(
        names,
        [
            ("accuracy", 1.0),
            ("format", 0.2),
            ("length", 0.0),
            ("rubric_rules", 0.0)
        ]
    );
    // Without reasoning there is nothing for the deterministic rubric to grade.
    let rs = build_rewards(&cfg, false).unwrap();
    assert!(rs.iter().all(|(_, r)| r.name() != "rubric_rules"));

    let cfg: RewardsConfig = toml::from_str(
        r#"
            accuracy = 1.0
            length = 0.1
            length_band = [50, 100]
            fn_cost = 1.5

            [[external]]
            name = "toxicity"
            weight = 0.3
            command = ["sh", "-c", "while read l; do echo 0.5; done"]

            [[external]]
            name = "service"
            url = "http://127.0.0.1:9/score"
            "#,
    )
    .unwrap();
    let rs = build_rewards(&cfg, true).unwrap();
    let names: Vec<(&str, f64)> = rs.iter().map(|(w, r)| (r.name(), *w)).collect();
    assert_eq!(
        names,
        [
            ("accuracy", 1.0),
            ("format", 0.2),
            ("length", 0.1),
            ("rubric_rules", 0.0),
            ("toxicity", 0.3),
            ("service", 1.0)
        ]
    );
    // The configured band and costs reach the rewards.
    let p = policy();
    let safe = format_output(&words(25), &v(Label::NonViolating, None, 0.1));
    let batch = [input(&safe, 1, &p)];
    assert_eq!(rs[0].1.score(&batch).unwrap(), [-1.5]);
    assert_eq!(rs[2].1.score(&batch).unwrap(), [0.5]);
    assert_eq!(rs[4].1.score(&batch).unwrap(), [0.5]);
}

#[test]
fn build_rewards_rejects_bad_configs() {
    let err = |t: &str| {
        let cfg: RewardsConfig = toml::from_str(t).unwrap();
        build_rewards(&cfg, true).err().unwrap().to_string()
    };
    assert!(err("rubric = 0.5").contains("[rewards.judge]"));
    let cfg: RewardsConfig = toml::from_str("rubric_rules = 0.5").unwrap();
    let e = build_rewards(&cfg, false).err().unwrap().to_string();
    assert!(
        e.contains("rubric_rules") && e.contains("no_reasoning"),
        "{e}"
    );
    assert!(err("length_band = [300, 100]").contains("length_band"));
    assert!(err("fp_cost = -1.0").contains("fp_cost"));
    assert!(err("[[external]]\nname = \"format\"\ncommand = [\"true\"]").contains("already used"));
    assert!(err("[[external]]\nname = \"x\"").contains("exactly one of command and url"));
    assert!(
        err("[[external]]\nname = \"x\"\ncommand = [\"a\"]\nurl = \"http://h\"")
            .contains("exactly one")
    );
    assert!(err("[[external]]\nname = \"x\"\nurl = \"ftp://h\"").contains("http://"));
    assert!(toml::from_str::<RewardsConfig>("acuracy = 1.0").is_err());
}

#[test]
fn instruction_hallucination_flags_contract_breaks() {
    let p = policy();
    assert!(!instruction_hallucination(&good_violating(), &p));
    for bad in [
            "no verdict".to_string(),
            format!("{}\nextra", good_violating()),
            v(Label::NonViolating, None, 0.1).to_json_line(),
            format_output("x", &v(Label::NonViolating, None, 0.9)),
            "<reasoning>x</reasoning>\n{\"label\": \"violating\", \"category\": \"spam\", \"probability\": 0.9}"
                .to_string(),
            "<reasoning>x</reasoning>\n{\"label\": \"violating\", \"probability\": 0.9".to_string(),
        ] {
            assert!(instruction_hallucination(&bad, &p), "{bad:?}");
        }
}

#[test]
fn contract_check_locates_the_verdict() {
    let p = policy();
    let c = check_contract(&good_violating(), &p);
    assert!(c.is_clean(), "{c:?}");
    // A JSON example inside the reasoning is not the verdict.
    let text = "<reasoning>The format is {\"label\": \"x\"}.</reasoning>\n{\"label\": \"non_violating\", \"category\": \"none\", \"probability\": 0.2}\n";
    let c = check_contract(text, &p);
    assert!(c.is_clean(), "{c:?}");
    assert_eq!(verdict::verdict_span("no json"), None);
    let s = "ab {\"label\": 1} cd";
    assert_eq!(verdict::verdict_span(s), Some((3, 15)));
}

#[test]
fn quote_hallucination_checks_quotes_against_the_content() {
    let rf = |reasoning: &str| {
        format_output(reasoning, &v(Label::Violating, Some("dehumanization"), 0.9))
    };
    // Faithful quotes: case, whitespace, punctuation and elisions do not matter.
    assert_eq!(
        quote_hallucination(&rf("It says \"those people are VERMIN.\""), CONTENT),
        Some(false)
    );
    assert_eq!(
        quote_hallucination(
            &rf("It says 'Those  people ... removed from our city'."),
            CONTENT
        ),
        Some(false)
    );
    assert_eq!(
        quote_hallucination(&rf("It says \u{201C}vermin\u{201D}."), CONTENT),
        Some(false)
    );
    // Invented quotes.
    assert_eq!(
        quote_hallucination(&rf("It says \"kill them all\"."), CONTENT),
        Some(true)
    );
    assert_eq!(
        quote_hallucination(&rf("It calls them \u{2018}rats\u{2019}."), CONTENT),
        Some(true)
    );
    // Nothing quoted, or only contract words and category names.
    assert_eq!(
        quote_hallucination(
            &rf("The user doesn't like them; the users' tone is hostile."),
            CONTENT
        ),
        None
    );
    let policy_words =
        rf("This is \"violating\", 'exclusion_and_discrimination', not \"non_violating\".");
    assert_eq!(quote_hallucination(&policy_words, CONTENT), None);
    // A category name without an underscore needs the policy to be recognised.
    let named = rf("This is \"dehumanization\".");
    assert_eq!(quote_hallucination(&named, CONTENT), Some(true));
    assert_eq!(
        quote_hallucination_with_policy(&named, CONTENT, &policy()),
        Some(false)
    );
    // Quotes in the verdict line are not reasoning.
    assert_eq!(
        quote_hallucination(&good_violating(), "something else"),
        Some(true)
    );
    assert_eq!(
        quote_hallucination(
            &v(Label::Violating, Some("slurs"), 0.9).to_json_line(),
            CONTENT
        ),
        None
    );
}

#[test]
fn quotes_of_the_policy_are_allowed_with_the_policy() {
    let p = policy();
    let phrase = p.categories[1]
        .violates
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    let c = format_output(
        &format!("The policy covers \"{phrase}\" and the post says \"vermin\"."),
        &v(Label::Violating, Some("dehumanization"), 0.9),
    );
    assert_eq!(quote_hallucination(&c, CONTENT), Some(true));
    assert_eq!(
        quote_hallucination_with_policy(&c, CONTENT, &p),
        Some(false)
    );
}

#[test]
fn quoted_span_extraction() {
    let text = "<reasoning>He said \"a b\" and 'c d', it's the users' \u{201C}e\u{201D}; \"unclosed</reasoning>";
    assert_eq!(quoted_spans(text), ["a b", "c d", "e"]);
}
