#!/usr/bin/env python3
"""Self-test of scripts/check_config_docs.py on tiny fake config.rs / reference.md pairs.

Run from anywhere:  python3 scripts/test_check_config_docs.py
"""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "check_config_docs.py")

# rustfmt-style source, with the shapes the real config uses: a root struct, a struct with
# #[serde(default)] + impl Default, field-level default functions, Option fields, an enum with
# rename_all, a tuple default, a rename, and a multi-line attribute.
CONFIG_RS = textwrap.dedent('''\
    use serde::{Deserialize, Serialize};

    use crate::rewards::RewardsConfig;

    /// A whole run.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RunConfig {
        pub model: ModelConfig,
        /// Stages in order. Default: SFT then RL.
        #[serde(default = "default_stages")]
        pub stages: Vec<Stage>,
        #[serde(default)]
        pub rl: RlConfig,
        #[serde(default)]
        pub rewards: RewardsConfig,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Stage {
        Sft,
        Rl,
    }

    fn default_stages() -> Vec<Stage> {
        vec![Stage::Sft, Stage::Rl]
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ModelConfig {
        /// HF model directory.
        pub path: PathBuf,
        /// `cpu` or `cuda`. Default `cpu`.
        #[serde(default = "default_device")]
        pub device: String,
        /// Start from this adapter. Default none.
        #[serde(default)]
        pub adapter: Option<PathBuf>,
        /// Fold the system message into the user turn.
        #[serde(
            default,
            rename = "no_system"
        )]
        pub no_system_role: bool,
    }

    fn default_device() -> String {
        "cpu".into()
    }

    /// RL.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct RlConfig {
        /// Optimizer steps. Default 100.
        pub max_steps: usize,
        /// Peak learning rate. Default 1e-5.
        pub learning_rate: f64,
        /// Lower clip range. Default 0.2.
        pub epsilon: f64,
        /// Upper clip range. Default: `epsilon`.
        pub epsilon_high: Option<f64>,
        /// Loss aggregation. Default `dr_grpo`.
        pub loss_type: LossType,
        /// Drop zero-advantage groups. Default false.
        pub dynamic_sampling: bool,
        /// Adapter name on the server. Default `modrl-policy`.
        pub rollout_model: String,
        /// Use at most this many examples. Default: all.
        pub max_examples: Option<usize>,
    }

    impl Default for RlConfig {
        fn default() -> Self {
            RlConfig {
                max_steps: 100,
                learning_rate: 1e-5,
                epsilon: 0.2,
                epsilon_high: None,
                loss_type: LossType::DrGrpo,
                dynamic_sampling: false,
                rollout_model: "modrl-policy".into(),
                max_examples: None,
            }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum LossType {
        Grpo,
        #[default]
        DrGrpo,
    }
''')

REWARDS_RS = textwrap.dedent('''\
    use crate::judge::JudgeConfig;

    /// Which rewards to use.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct RewardsConfig {
        /// Weight of accuracy. Default 1.
        pub accuracy: f64,
        /// `[min_words, max_words]`. Default `[120, 320]`.
        pub length_band: (usize, usize),
        /// The rubric judge. Default none.
        pub judge: Option<JudgeConfig>,
    }

    impl Default for RewardsConfig {
        fn default() -> Self {
            RewardsConfig {
                accuracy: 1.0,
                length_band: (120, 320),
                judge: None,
            }
        }
    }
''')

JUDGE_RS = textwrap.dedent('''\
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum JudgeBackend {
        Local,
        Openai,
    }

    /// Judge settings.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct JudgeConfig {
        /// `"local"` or `"openai"`.
        pub backend: JudgeBackend,
        /// local: `cpu` or `cuda`. Default `cuda`.
        #[serde(default = "default_device")]
        pub device: String,
        /// openai: seconds before a request fails. Default 120.
        #[serde(default = "default_judge_timeout_s")]
        pub timeout_s: f64,
    }

    // Same name as the function in config.rs: the checker must use this file's.
    fn default_device() -> String {
        "cuda".to_string()
    }
    fn default_judge_timeout_s() -> f64 {
        120.0
    }
''')

# Consistent with the fakes above, written with the variations the checker must accept:
# 0.00001 for 1e-5, quoted and bare strings, none/unset/all/"= `epsilon`" for Option fields,
# split keys, a sub-table given both as a row of its parent and as its own table.
DOCS_MD = textwrap.dedent('''\
    # Run config reference

    ## Top level
    | key | default | meaning |
    |---|---|---|
    | `stages` | `["sft", "rl"]` | recipe |

    ## `[model]`
    | key | default | meaning |
    |---|---|---|
    | `path` | required | HF model directory |
    | `device` | "cpu" | `cpu`, `cuda` |
    | `adapter` | none | start from an adapter |
    | `no_system` | false | fold the system message into the user turn |

    ## `[rl]` (GRPO family)
    | key | default | meaning |
    |---|---|---|
    | `max_steps` | 100 | optimizer steps |
    | `learning_rate` | 0.00001 | peak LR |
    | `epsilon` / `epsilon_high` | 0.2 / = `epsilon` | clip range of the ratio |
    | `loss_type` | `dr_grpo` | aggregation |
    | `dynamic_sampling` | false | DAPO dynamic sampling |
    | `rollout_model` | `modrl-policy` | adapter name on the server |
    | `max_examples` | all | cap on examples |

    ## `[rewards]`: R = accuracy
    | key | default | meaning |
    |---|---|---|
    | `accuracy` | 1.0 | weight of accuracy |
    | `length_band` | `[120, 320]` | words of reasoning |
    | `[rewards.judge]` | unset (no judge) | the rubric judge (table below) |

    ### `[rewards.judge]`
    | key | default | meaning |
    |---|---|---|
    | `backend` | required | `local` or `openai` |
    | `device` | `cuda` | local: `cpu`, `cuda` |
    | `timeout_s` | 1.2e2 | openai: seconds before a request fails |

    ## What a run writes
    Nothing checked here.
''')


class CheckConfigDocsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_checker(self, config_rs=CONFIG_RS, rewards_rs=REWARDS_RS, judge_rs=JUDGE_RS, docs=DOCS_MD):
        args = [
            sys.executable,
            SCRIPT,
            "--config-rs", self.write("config.rs", config_rs),
            "--rewards-rs", self.write("rewards.rs", rewards_rs),
            "--judge-rs", self.write("judge.rs", judge_rs),
            "--lora-rs", "",
            "--enum-src", "",
            "--docs", self.write("reference.md", docs),
        ]
        p = subprocess.run(args, capture_output=True, text=True, cwd=self.dir)
        return p.returncode, p.stdout, p.stderr

    def assert_one_problem(self, out, *needles):
        lines = [l for l in out.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, out)
        for n in needles:
            self.assertIn(n, lines[0])
        return lines[0]

    def test_consistent_pair_passes(self):
        rc, out, err = self.run_checker()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("ok:", out)

    def test_wrong_default_is_caught(self):
        docs = DOCS_MD.replace("| `max_steps` | 100 |", "| `max_steps` | 50 |")
        rc, out, _ = self.run_checker(docs=docs)
        self.assertEqual(rc, 1)
        line = self.assert_one_problem(out, "reference.md:", "[rl] max_steps", "50", "100")
        # The docs line number of the row.
        row = docs.splitlines().index("| `max_steps` | 50 | optimizer steps |") + 1
        self.assertIn("reference.md:%d:" % row, line)

    def test_wrong_enum_float_and_string_defaults_are_caught(self):
        for old, new, key in [
            ("| `loss_type` | `dr_grpo` |", "| `loss_type` | `grpo` |", "loss_type"),
            ("| `learning_rate` | 0.00001 |", "| `learning_rate` | 1e-4 |", "learning_rate"),
            ('| `device` | "cpu" |', "| `device` | `cuda` |", "[model] device"),
            ("| `device` | `cuda` |", "| `device` | `cpu` |", "[rewards.judge] device"),
            ("| `dynamic_sampling` | false |", "| `dynamic_sampling` | true |", "dynamic_sampling"),
            ("0.2 / = `epsilon`", "0.2 / 0.28", "epsilon_high"),
            ("| `max_examples` | all |", "| `max_examples` | 300 |", "max_examples"),
            ("| `path` | required |", "| `path` | `model` |", "[model] path"),
            ("| `adapter` | none |", "| `adapter` | required |", "[model] adapter"),
            ("| `length_band` | `[120, 320]` |", "| `length_band` | `[100, 320]` |", "length_band"),
        ]:
            with self.subTest(key=key):
                self.assertIn(old, DOCS_MD)
                rc, out, _ = self.run_checker(docs=DOCS_MD.replace(old, new))
                self.assertEqual(rc, 1, out)
                self.assert_one_problem(out, key)

    def test_missing_key_is_caught(self):
        docs = DOCS_MD.replace("| `rollout_model` | `modrl-policy` | adapter name on the server |\n", "")
        rc, out, _ = self.run_checker(docs=docs)
        self.assertEqual(rc, 1)
        line = self.assert_one_problem(out, "config.rs:", "[rl] rollout_model", "missing")
        self.assertIn("modrl-policy", line)

    def test_missing_section_is_caught(self):
        start = DOCS_MD.index("### `[rewards.judge]`")
        end = DOCS_MD.index("## What a run writes")
        rc, out, _ = self.run_checker(docs=DOCS_MD[:start] + DOCS_MD[end:])
        self.assertEqual(rc, 1)
        self.assert_one_problem(out, "[rewards.judge]", "no table", "backend", "timeout_s")

    def test_extra_key_is_caught(self):
        docs = DOCS_MD.replace("| `max_steps` | 100 | optimizer steps |\n",
                               "| `max_steps` | 100 | optimizer steps |\n| `max_stepz` | 3 | typo |\n")
        rc, out, _ = self.run_checker(docs=docs)
        self.assertEqual(rc, 1)
        self.assert_one_problem(out, "reference.md:", "[rl] max_stepz", "not a key of RlConfig")

    def test_extra_section_is_caught(self):
        docs = DOCS_MD.replace("## What a run writes",
                               "## `[serve]`\n| key | default | meaning |\n|---|---|---|\n| `port` | 8000 | port |\n\n## What")
        rc, out, _ = self.run_checker(docs=docs)
        self.assertEqual(rc, 1)
        self.assert_one_problem(out, "[serve]", "no such table")

    def test_renamed_field_uses_its_serde_name(self):
        docs = DOCS_MD.replace("| `no_system` |", "| `no_system_role` |")
        rc, out, _ = self.run_checker(docs=docs)
        self.assertEqual(rc, 1)
        self.assertIn("[model] no_system_role: documented but not a key", out)
        self.assertIn("[model] no_system: missing", out)

    def test_doc_comment_disagreeing_with_code_is_caught(self):
        code = CONFIG_RS.replace("/// Optimizer steps. Default 100.", "/// Optimizer steps. Default 200.")
        rc, out, _ = self.run_checker(config_rs=code)
        self.assertEqual(rc, 1)
        self.assert_one_problem(out, "config.rs:", "[rl] max_steps", "doc comment", "Default 200", "100")
        # A default function's value counts too: judge.rs's own default_device (not the
        # config.rs function of the same name) now returns "cpu", the comment still says `cuda`.
        judge = JUDGE_RS.replace('"cuda".to_string()', '"cpu".to_string()')
        docs = DOCS_MD.replace("| `device` | `cuda` |", "| `device` | `cpu` |")
        rc, out, _ = self.run_checker(judge_rs=judge, docs=docs)
        self.assertEqual(rc, 1, out)
        self.assert_one_problem(out, "judge.rs:", "[rewards.judge] device", "Default `cuda`")

    def test_help(self):
        p = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        for opt in ("--config-rs", "--rewards-rs", "--judge-rs", "--docs"):
            self.assertIn(opt, p.stdout)


if __name__ == "__main__":
    unittest.main()
