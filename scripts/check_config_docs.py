#!/usr/bin/env python3
"""Check that docs/config-reference.md agrees with the run-config code.

The code is the source of truth. The checker reads the Rust source textually (no compiler):
`RunConfig` in crates/train/src/config.rs is the root of the TOML document; every field whose
type (inside `Option<...>` / `Vec<...>`) is a struct defined in one of the given files is a
table (`[model]`, `[rewards.judge]`, `[[rewards.external]]`, ...); every other field is a key.
For each key it works out the default a TOML file gets when the key is left out, as serde does:

  * `#[serde(default = "path")]` on the field: the value the function `path` returns;
  * `#[serde(default)]` on the field: the type's default (0, false, "", [], none, the enum's
    `#[default]` variant, or `impl Default for T`);
  * `#[serde(default)]` on the struct: the field's value in `impl Default for Struct`
    (or the type's default where the struct derives `Default`);
  * otherwise `Option<T>` is none and anything else is required.

Enum values are written with their serde names (`rename_all`, `rename`; snake_case when the
enum's definition is not found). Field names follow `rename` / `rename_all`; aliases are also
accepted as keys.

The docs are read as one Markdown table per TOML section: a heading that names the section in
backticks (`## [sft]`, `### [rewards.judge]`, `## [[rewards.external]]`; the heading "Top level"
is the root) followed by a table with the columns key | default | meaning. A key cell may name
several keys (`train_split` / `val_split`), with the defaults split the same way (`train` / `val`).
A sub-table may also appear as a row of its parent (`[rewards.judge]` | none | ...).

Reported, one line per problem, as FILE:LINE: message:
  * a field in the code missing from the docs table of its section (or a section with no table);
  * a key (or section) in the docs that the code does not have;
  * a docs default that disagrees with the code's default;
  * a "Default X" sentence in a field's doc comment that disagrees with the code's default.

Defaults are compared after normalisation: numbers by value (1e-5 == 0.00001 == 1.0e-5, 0 == 0.0),
`true`/`false`, strings with or without backticks/quotes, lists and tuples element-wise. The words
none / unset / all / no limit / empty (optionally followed by a parenthesis, e.g. "unset (local)")
mean "no value": they match an `Option` whose default is none, or an empty list/string. "required"
matches a required field. For an `Option` defaulting to none, the docs may also describe what
absence means in words ("natural prevalence", "= `epsilon`", "`runs/<config name>`"); a concrete
value (a number, `true`, a single backticked word) is a disagreement there. For a field with a
concrete default, the docs must state that value. In doc comments, a "Default ..." phrase that is
prose rather than a value ("Default: SFT then RL") or names another field is not compared.

Exit status: 0 when everything agrees, 1 when a problem was found, 2 on usage errors or
unreadable files. Code defaults the checker cannot evaluate are noted on stderr, not counted.
"""

import argparse
import math
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

DEFAULT_PATHS = {
    "config_rs": os.path.join(REPO, "crates", "train", "src", "config.rs"),
    "rewards_rs": os.path.join(REPO, "crates", "train", "src", "rewards", "config.rs"),
    "judge_rs": os.path.join(REPO, "crates", "train", "src", "judge.rs"),
    "lora_rs": os.path.join(REPO, "crates", "model", "src", "lora.rs"),
    "docs": os.path.join(REPO, "docs", "config-reference.md"),
    "enum_src": os.path.join(REPO, "crates"),
}

ROOT_STRUCT = "RunConfig"


# ---------------------------------------------------------------------------------------------
# Values.


class _Sentinel:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


NONE = _Sentinel("none")  # Option<T> defaulting to None
REQUIRED = _Sentinel("required")  # no default: the key must be given
TABLE = _Sentinel("table")  # a nested struct's own default (not a scalar)


class Unknown:
    """A default the checker cannot evaluate (kept as source text)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return "Unknown(%r)" % self.text


NONE_WORDS = {"none", "unset", "all", "no limit", "empty", "nothing", "no", "n/a"}


def fmt_value(v):
    """A value as the docs would write it."""
    if v is NONE:
        return "none"
    if v is REQUIRED:
        return "required"
    if v is TABLE:
        return "(table)"
    if isinstance(v, Unknown):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e15:
            return "%.1f" % v
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return "`%s`" % v
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_inner(x) for x in v) + "]"
    return str(v)


def fmt_inner(v):
    if isinstance(v, str):
        return '"%s"' % v
    return fmt_value(v).strip("`")


def values_equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    if isinstance(a, (int, float)) and isinstance(b, str):
        nb = parse_number(b)
        return nb is not None and values_equal(a, nb)
    if isinstance(a, str) and isinstance(b, (int, float)):
        return values_equal(b, a)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    return False


def is_empty_value(v):
    return (isinstance(v, (list, tuple, str)) and len(v) == 0) or v is NONE


NUMBER_RE = re.compile(
    r"^[+-]?(?:\d[\d_]*)?(?:\.\d[\d_]*|\d[\d_]*\.?)(?:[eE][+-]?\d[\d_]*)?"
    r"(?:_?(?:f32|f64|u8|u16|u32|u64|u128|usize|i8|i16|i32|i64|i128|isize))?$"
)


def parse_number(text):
    t = text.strip()
    if not t or not NUMBER_RE.match(t):
        return None
    t = re.sub(r"_?(f32|f64|u8|u16|u32|u64|u128|usize|i8|i16|i32|i64|i128|isize)$", "", t)
    t = t.replace("_", "")
    if t in ("", "+", "-", "."):
        return None
    try:
        if re.match(r"^[+-]?\d+$", t):
            return int(t)
        return float(t)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Generic text helpers.


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def match_close(text, pos, open_ch, close_ch):
    """Index of the bracket closing the one at text[pos], skipping strings and comments."""
    depth = 0
    i = pos
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = skip_string(text, i)
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def skip_string(text, i):
    """Index just past the string literal starting at text[i] (a double quote)."""
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return i


def split_top(text, sep=",", angle=False):
    """Split on sep at bracket depth 0 (optionally counting <> as brackets), outside strings."""
    parts = []
    depth = 0
    cur = []
    i = 0
    opens = "([{" + ("<" if angle else "")
    closes = ")]}" + (">" if angle else "")
    while i < len(text):
        c = text[i]
        if c == '"':
            j = skip_string(text, i)
            cur.append(text[i:j])
            i = j
            continue
        if angle and text.startswith("->", i):
            cur.append("->")
            i += 2
            continue
        if c in opens:
            depth += 1
        elif c in closes:
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def strip_comments(text):
    """Remove // and /* */ comments (not inside strings)."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = skip_string(text, i)
            out.append(text[i:j])
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def unquote(s):
    s = s.strip()
    m = re.match(r'^r(#*)"(.*)"\1$', s, re.S)
    if m:
        return m.group(2)
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return bytes(s[1:-1], "utf-8").decode("unicode_escape") if "\\" in s else s[1:-1]
    return s


def camel_to_snake(name):
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return s.lower()


def rename_variant(name, rule):
    """serde's rename_all applied to a PascalCase variant name."""
    if not rule:
        return name
    snake = camel_to_snake(name)
    return {
        "lowercase": name.lower(),
        "UPPERCASE": name.upper(),
        "PascalCase": name,
        "camelCase": name[:1].lower() + name[1:],
        "snake_case": snake,
        "SCREAMING_SNAKE_CASE": snake.upper(),
        "kebab-case": snake.replace("_", "-"),
        "SCREAMING-KEBAB-CASE": snake.replace("_", "-").upper(),
    }.get(rule, name)


def rename_field(name, rule):
    """serde's rename_all applied to a snake_case field name."""
    if not rule:
        return name
    words = name.split("_")
    return {
        "lowercase": name.lower(),
        "UPPERCASE": name.upper(),
        "PascalCase": "".join(w.capitalize() for w in words),
        "camelCase": words[0] + "".join(w.capitalize() for w in words[1:]),
        "snake_case": name,
        "SCREAMING_SNAKE_CASE": name.upper(),
        "kebab-case": name.replace("_", "-"),
        "SCREAMING-KEBAB-CASE": name.replace("_", "-").upper(),
    }.get(rule, name)


# ---------------------------------------------------------------------------------------------
# Rust items.


class SerdeAttrs:
    def __init__(self):
        self.default = None  # None (absent), True (plain `default`), or a function path
        self.rename = None
        self.aliases = []
        self.rename_all = None
        self.skip = False
        self.flatten = False
        self.other = []


def parse_serde_attrs(attrs):
    """Merge the `#[serde(...)]` attributes in a list of attribute texts."""
    sa = SerdeAttrs()
    for a in attrs:
        m = re.match(r"^#\s*\[\s*serde\s*\((.*)\)\s*\]$", a, re.S)
        if not m:
            continue
        for item in split_top(m.group(1)):
            item = " ".join(item.split())
            if not item:
                continue
            km = re.match(r"^([A-Za-z_]+)\s*(?:=\s*(.*)|\((.*)\))?$", item, re.S)
            if not km:
                sa.other.append(item)
                continue
            key, val, paren = km.group(1), km.group(2), km.group(3)
            if key == "default":
                sa.default = unquote(val) if val else True
            elif key == "rename":
                if val:
                    sa.rename = unquote(val)
                elif paren:
                    dm = re.search(r'deserialize\s*=\s*("(?:[^"\\]|\\.)*")', paren)
                    if dm:
                        sa.rename = unquote(dm.group(1))
            elif key == "alias" and val:
                sa.aliases.append(unquote(val))
            elif key == "rename_all":
                if val:
                    sa.rename_all = unquote(val)
                elif paren:
                    dm = re.search(r'deserialize\s*=\s*("(?:[^"\\]|\\.)*")', paren)
                    if dm:
                        sa.rename_all = unquote(dm.group(1))
            elif key in ("skip", "skip_deserializing"):
                sa.skip = True
            elif key == "flatten":
                sa.flatten = True
            else:
                sa.other.append(item)
    return sa


def derives(attrs):
    out = set()
    for a in attrs:
        m = re.match(r"^#\s*\[\s*derive\s*\((.*)\)\s*\]$", a, re.S)
        if m:
            out.update(x.strip().split("::")[-1] for x in m.group(1).split(",") if x.strip())
    return out


def preceding_attrs_docs(text, pos):
    """Attributes and doc comment lines directly above the item starting at pos."""
    lines = text[:pos].split("\n")
    # The item's own line may start with `pub`; anything before pos on that line is ignored.
    lines = lines[:-1]
    attrs, docs = [], []
    i = len(lines) - 1
    while i >= 0:
        s = lines[i].strip()
        if s.startswith("///"):
            docs.append(s[3:].strip())
            i -= 1
        elif s.startswith("#[") and s.endswith("]"):
            attrs.append(s)
            i -= 1
        elif s.endswith("]") and not s.startswith("//"):
            j = i - 1
            while j >= 0 and not lines[j].strip().startswith("#["):
                j -= 1
            if j < 0:
                break
            attrs.append(" ".join(x.strip() for x in lines[j : i + 1]))
            i = j - 1
        elif s.startswith("//") and not s.startswith("//!"):
            i -= 1  # a plain comment between attributes
        else:
            break
    attrs.reverse()
    docs.reverse()
    return attrs, docs


def parse_members(body, body_offset, text):
    """(docs, attrs, member text, absolute position) for each comma-separated member of a
    struct or enum body; doc comments and attributes are collected, plain comments dropped."""
    members = []
    i = 0
    n = len(body)
    docs, attrs = [], []
    while i < n:
        c = body[i]
        if c.isspace() or c == ",":
            i += 1
            continue
        if body.startswith("///", i) and not body.startswith("////", i):
            j = body.find("\n", i)
            j = n if j < 0 else j
            docs.append(body[i + 3 : j].strip())
            i = j
            continue
        if body.startswith("//", i):
            j = body.find("\n", i)
            i = n if j < 0 else j
            continue
        if body.startswith("/*", i):
            j = body.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == "#":
            k = body.find("[", i)
            j = match_close(body, k, "[", "]")
            attrs.append(" ".join(body[i : j + 1].split()))
            i = j + 1
            continue
        # A member: up to the next comma at depth 0 (types count <> as brackets).
        depth = 0
        j = i
        while j < n:
            ch = body[j]
            if ch == '"':
                j = skip_string(body, j)
                continue
            if body.startswith("->", j):
                j += 2
                continue
            if body.startswith("//", j) or body.startswith("/*", j):
                break
            if ch in "([{<":
                depth += 1
            elif ch in ")]}>":
                depth -= 1
            elif ch == "," and depth == 0:
                break
            j += 1
        members.append((docs, attrs, body[i:j].strip(), body_offset + i))
        docs, attrs = [], []
        i = j + 1 if j < n and body[j] == "," else j
    return members


class Field:
    def __init__(self, name, ty, serde, docs, path, line):
        self.rust_name = name
        self.ty = ty
        self.serde = serde
        self.docs = docs
        self.path = path
        self.line = line
        self.keys = []  # TOML key and aliases
        self.default = None  # resolved later
        self.default_where = None  # (path, line) of the default's definition


class Struct:
    def __init__(self, name, path, line, attrs, docs, fields):
        self.name = name
        self.path = path
        self.line = line
        self.serde = parse_serde_attrs(attrs)
        self.derives = derives(attrs)
        self.docs = docs
        self.fields = fields


class Enum:
    def __init__(self, name, path, line, attrs, variants, default_variant):
        self.name = name
        self.path = path
        self.line = line
        self.serde = parse_serde_attrs(attrs)
        self.variants = variants  # rust name -> serde name
        self.default_variant = default_variant


class Source:
    def __init__(self, path):
        self.path = path
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        self.structs = {}
        self.enums = {}
        self._parse()

    def _parse(self):
        t = self.text
        for m in re.finditer(r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?struct\s+(\w+)\b([^;{(]*)\{", t, re.M):
            name = m.group(1)
            if name in self.structs:
                continue
            ob = m.end() - 1
            cb = match_close(t, ob, "{", "}")
            if cb < 0:
                continue
            attrs, docs = preceding_attrs_docs(t, m.start())
            fields = []
            for fdocs, fattrs, member, pos in parse_members(t[ob + 1 : cb], ob + 1, t):
                fm = re.match(r"^(?:pub(?:\s*\([^)]*\))?\s+)?(?:r#)?(\w+)\s*:\s*(.+)$", member, re.S)
                if not fm:
                    continue
                name_pos = pos + member.find(fm.group(1))
                fields.append(
                    Field(
                        fm.group(1),
                        " ".join(fm.group(2).split()),
                        parse_serde_attrs(fattrs),
                        fdocs,
                        self.path,
                        line_of(t, name_pos),
                    )
                )
            self.structs[name] = Struct(name, self.path, line_of(t, m.start()), attrs, docs, fields)
        for m in re.finditer(r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?enum\s+(\w+)\b[^;{]*\{", t, re.M):
            name = m.group(1)
            if name in self.enums:
                continue
            ob = m.end() - 1
            cb = match_close(t, ob, "{", "}")
            if cb < 0:
                continue
            attrs, _ = preceding_attrs_docs(t, m.start())
            rule = parse_serde_attrs(attrs).rename_all
            variants = {}
            default_variant = None
            for _vdocs, vattrs, member, _pos in parse_members(t[ob + 1 : cb], ob + 1, t):
                vm = re.match(r"^(\w+)", member)
                if not vm:
                    continue
                vname = vm.group(1)
                vs = parse_serde_attrs(vattrs)
                variants[vname] = vs.rename or rename_variant(vname, rule)
                if any(re.match(r"^#\s*\[\s*default\s*\]$", a) for a in vattrs):
                    default_variant = vname
            self.enums[name] = Enum(name, self.path, line_of(t, m.start()), attrs, variants, default_variant)

    def find_fn(self, name):
        """(expression, line) of the tail expression of `fn name() -> T { ... }`."""
        m = re.search(r"\bfn\s+%s\s*\(\s*\)\s*(?:->\s*[^{]+)?\{" % re.escape(name), self.text)
        if not m:
            return None
        ob = m.end() - 1
        cb = match_close(self.text, ob, "{", "}")
        body = strip_comments(self.text[ob + 1 : cb]).strip()
        stmts = [s for s in split_top(body, ";")]
        tail = stmts[-1].strip()
        if not tail and len(stmts) > 1:
            ret = re.match(r"^\s*return\s+(.*)$", stmts[-2], re.S)
            tail = ret.group(1) if ret else ""
        return tail, line_of(self.text, m.start())

    def impl_default(self, struct_name):
        """{field: (expression, line)} from `impl Default for S`'s struct literal, or None."""
        t = self.text
        m = re.search(r"\bimpl\s+(?:[\w:]+::)?Default\s+for\s+%s\s*\{" % re.escape(struct_name), t)
        if not m:
            return None
        ob = m.end() - 1
        cb = match_close(t, ob, "{", "}")
        impl = t[ob:cb]
        fm = re.search(r"\bfn\s+default\s*\(\s*\)\s*(?:->\s*[^{]+)?\{", impl)
        if not fm:
            return None
        lm = re.search(r"\b(?:%s|Self)\s*\{" % re.escape(struct_name), impl[fm.end() :])
        if not lm:
            return None
        lob = ob + fm.end() + lm.end() - 1
        lcb = match_close(t, lob, "{", "}")
        out = {}
        for _docs, _attrs, member, pos in parse_members(t[lob + 1 : lcb], lob + 1, t):
            member = member.strip()
            if member.startswith(".."):
                out[".."] = (member[2:].strip(), line_of(t, pos))
                continue
            em = re.match(r"^(?:r#)?(\w+)\s*(?::\s*(.*))?$", member, re.S)
            if em:
                expr = em.group(2) if em.group(2) is not None else em.group(1)
                out[em.group(1)] = (" ".join(expr.split()), line_of(t, pos))
        return out


# ---------------------------------------------------------------------------------------------
# The code model: sections, keys and defaults.

PRIMITIVE_DEFAULTS = {
    **{k: 0 for k in "usize u8 u16 u32 u64 u128 isize i8 i16 i32 i64 i128".split()},
    "f32": 0.0,
    "f64": 0.0,
    "bool": False,
    "String": "",
    "PathBuf": "",
    "str": "",
    "char": "\0",
}
COLLECTIONS = {"Vec", "HashMap", "BTreeMap", "HashSet", "BTreeSet", "IndexMap", "VecDeque"}


def type_head(ty):
    """('Option', 'T') for Option<T>, ('Vec', 'T'), ('tuple', [A, B]), ('', 'Name')."""
    ty = ty.strip()
    if ty.startswith("(") and ty.endswith(")"):
        return "tuple", [x.strip() for x in split_top(ty[1:-1], angle=True) if x.strip()]
    m = re.match(r"^(?:[\w]+::)*(\w+)\s*<(.*)>$", ty, re.S)
    if m:
        return m.group(1), m.group(2).strip()
    return "", re.sub(r"^(?:[\w]+::)*", "", ty).strip("& ")


class Model:
    def __init__(self, sources, enum_sources):
        self.sources = sources
        self.structs = {}
        self.enums = {}
        for src in sources:
            for k, v in src.structs.items():
                self.structs.setdefault(k, v)
        for src in sources + enum_sources:
            for k, v in src.enums.items():
                self.enums.setdefault(k, v)
        self.by_path = {s.path: s for s in sources}
        self.notes = []

    def struct_type(self, ty):
        """The struct a field's type names (through Option/Vec/Box), or None."""
        head, inner = type_head(ty)
        if head in ("Option", "Vec", "Box"):
            return self.struct_type(inner)
        if head == "" and inner in self.structs:
            return self.structs[inner]
        return None

    def type_default(self, ty):
        head, inner = type_head(ty)
        if head == "Option":
            return NONE
        if head in COLLECTIONS:
            return []
        if head == "Box":
            return self.type_default(inner)
        if head == "tuple":
            return [self.type_default(x) for x in inner]
        if head == "":
            if inner in PRIMITIVE_DEFAULTS:
                return PRIMITIVE_DEFAULTS[inner]
            if inner in self.enums:
                e = self.enums[inner]
                if e.default_variant:
                    return e.variants[e.default_variant]
                # `impl Default for E { fn default() -> Self { E::X } }`
                for src in self.sources:
                    m = re.search(r"\bimpl\s+(?:[\w:]+::)?Default\s+for\s+%s\s*\{[^{}]*?\bfn\s+default\s*\(\s*\)"
                                  r"[^{]*\{\s*((?:Self|%s)::\w+)\s*\}" % (inner, inner), src.text)
                    if m:
                        return self.eval_expr(m.group(1), ty)
                return Unknown("%s::default()" % inner)
            if inner in self.structs:
                return TABLE
        return Unknown("%s::default()" % ty)

    def eval_expr(self, expr, ty):
        """A Rust default expression as a Python value (or NONE / Unknown)."""
        e = " ".join(strip_comments(expr).split())
        if not e:
            return Unknown(expr)
        # Trailing conversions: .into(), .to_string(), .map(String::from), .to_vec(), ...
        while e.endswith(")"):
            depth = 0
            k = len(e) - 1
            while k >= 0:
                if e[k] == ")":
                    depth += 1
                elif e[k] == "(":
                    depth -= 1
                    if depth == 0:
                        break
                k -= 1
            mm = re.search(r"\.\s*(?:into|to_string|to_owned|to_vec|collect|map|into_iter|iter|cloned|"
                           r"to_path_buf|into_boxed_str|into_boxed_slice)\s*(?:::<[^>]*>)?\s*$", e[:k])
            if k <= 0 or not mm:
                break
            e = e[: mm.start()].strip()
        head, inner = type_head(ty)
        if e == "None":
            return NONE
        wm = re.match(r"^(Some|(?:[\w]+::)*(?:String|PathBuf|Path|OsString)::(?:from|new)|Box::new|"
                      r"Into::into|From::from)\s*\((.*)\)$", e, re.S)
        if wm:
            inner_ty = inner if wm.group(1) == "Some" and head == "Option" else ty
            return self.eval_expr(wm.group(2), inner_ty)
        if re.match(r"^(?:[\w]+::)*(?:Vec|String|HashMap|BTreeMap|HashSet|BTreeSet)::new\(\)$", e):
            return [] if "String" not in e else ""
        if re.match(r"^(?:(?:[\w<>]+)::)*default\(\)$", e) or e == "Default::default()":
            return self.type_default(ty)
        if e in ("true", "false"):
            return e == "true"
        if e.startswith('"') or re.match(r'^r#*"', e):
            return unquote(e)
        n = parse_number(e)
        if n is not None:
            if head == "" and inner in ("f32", "f64"):
                return float(n)
            return n
        elem_ty = inner if head in COLLECTIONS or head == "Option" else ty
        lm = re.match(r"^(?:vec!\s*)?\[(.*)\]$", e, re.S)
        if lm:
            if re.search(r";", lm.group(1)):
                return Unknown(expr)
            items = [x for x in split_top(lm.group(1)) if x.strip()]
            return [self.eval_expr(x, elem_ty) for x in items]
        if e.startswith("(") and e.endswith(")"):
            items = [x for x in split_top(e[1:-1]) if x.strip()]
            if len(items) == 1 and not e[1:-1].rstrip().endswith(","):
                return self.eval_expr(items[0], ty)
            tys = inner if head == "tuple" else [ty] * len(items)
            if len(tys) != len(items):
                tys = [ty] * len(items)
            return [self.eval_expr(x, t) for x, t in zip(items, tys)]
        pm = re.match(r"^(?:([\w]+)::)*?(?:(\w+)::)?(\w+)$", e)
        if pm and (pm.group(2) or pm.group(3)[:1].isupper()):
            enum_name = pm.group(2)
            variant = pm.group(3)
            if enum_name in (None, "Self"):
                enum_name = inner if head in ("", "Option") else None
                if head == "Option":
                    enum_name = type_head(inner)[1]
            en = self.enums.get(enum_name) if enum_name else None
            if en is None and elem_ty:
                en = self.enums.get(type_head(elem_ty)[1])
            if en is not None and variant in en.variants:
                return en.variants[variant]
            if variant[:1].isupper() and re.match(r"^\w+$", variant):
                return camel_to_snake(variant)  # enum defined elsewhere: serde's snake_case guess
        return Unknown(expr)

    def resolve_default(self, struct, field, impl_defaults):
        """Set field.default and field.default_where."""
        src = self.by_path.get(struct.path)
        fs = field.serde
        if isinstance(fs.default, str):
            fn = fs.default.split("::")[-1]
            found = None
            for s in [src] + [x for x in self.sources if x is not src]:
                if s is None:
                    continue
                found = s.find_fn(fn)
                if found:
                    field.default_where = (s.path, found[1])
                    break
            if not found:
                field.default = Unknown('default = "%s" (function not found)' % fs.default)
                return
            field.default = self.eval_expr(found[0], field.ty)
            if isinstance(field.default, Unknown):
                field.default = Unknown("%s() = %s" % (fn, found[0]))
            return
        if fs.default is True:
            field.default = self.type_default(field.ty)
            field.default_where = (field.path, field.line)
            return
        if struct.serde.default is not None:
            if isinstance(struct.serde.default, str):
                field.default = Unknown('struct default = "%s"' % struct.serde.default)
                return
            if impl_defaults is not None:
                if field.rust_name in impl_defaults:
                    expr, line = impl_defaults[field.rust_name]
                    field.default_where = (struct.path, line)
                    field.default = self.eval_expr(expr, field.ty)
                    return
                field.default = Unknown("not set in impl Default for %s" % struct.name)
                return
            if "Default" in struct.derives:
                field.default = self.type_default(field.ty)
                field.default_where = (field.path, field.line)
                return
            field.default = Unknown("impl Default for %s not found" % struct.name)
            return
        head, _ = type_head(field.ty)
        if head == "Option":
            field.default = NONE
        else:
            field.default = REQUIRED
        field.default_where = (field.path, field.line)


class Section:
    def __init__(self, name, struct, array=False):
        self.name = name  # "" for the root, "rl", "rewards.judge", ...
        self.struct = struct
        self.array = array
        self.keys = {}  # toml key -> Field
        self.subsections = {}  # toml key -> Section
        self.opaque = {}  # toml key -> Field whose type is a table the checker cannot see

    @property
    def title(self):
        if not self.name:
            return "top level"
        return ("[[%s]]" if self.array else "[%s]") % self.name


def build_sections(model, root_name=ROOT_STRUCT):
    if root_name not in model.structs:
        raise SystemExit("error: struct %s not found in the given Rust files" % root_name)
    sections = []

    def visit(struct, name, array, seen):
        sec = Section(name, struct, array)
        sections.append(sec)
        src = model.by_path.get(struct.path)
        impl_defaults = None
        for s in [src] + [x for x in model.sources if x is not src]:
            if s is not None:
                impl_defaults = s.impl_default(struct.name)
                if impl_defaults is not None:
                    break
        for f in struct.fields:
            if f.serde.skip:
                continue
            if f.serde.flatten:
                inner = model.struct_type(f.ty)
                if inner is not None:
                    sub = visit_flat(inner, seen)
                    for k, v in sub.keys.items():
                        sec.keys[k] = v
                    for k, v in sub.subsections.items():
                        sec.subsections[k] = v
                    continue
            key = f.serde.rename or rename_field(f.rust_name, struct.serde.rename_all)
            f.keys = [key] + f.serde.aliases
            model.resolve_default(struct, f, impl_defaults)
            inner = model.struct_type(f.ty)
            if inner is not None and inner.name not in seen:
                head, _ = type_head(f.ty)
                child = visit(inner, (name + "." if name else "") + key, head == "Vec", seen | {inner.name})
                child.field = f
                sec.subsections[key] = child
                sec.keys[key] = f
                continue
            head, inner_name = type_head(f.ty)
            while head in ("Option", "Vec", "Box"):
                head, inner_name = type_head(inner_name)
            if (head == "" and inner_name[:1].isupper() and inner_name not in model.enums
                    and inner_name not in PRIMITIVE_DEFAULTS and inner_name not in ("String", "PathBuf")):
                sec.opaque[key] = f
            sec.keys[key] = f
        return sec

    def visit_flat(struct, seen):
        tmp = Section("", struct)
        saved = len(sections)
        res = visit(struct, "", False, seen | {struct.name})
        del sections[saved:]
        tmp.keys, tmp.subsections = res.keys, res.subsections
        return tmp

    visit(model.structs[root_name], "", False, {root_name})
    return sections


# ---------------------------------------------------------------------------------------------
# Docs.


def split_cells(line):
    """Cells of a Markdown table row; pipes inside backticks or escaped are not separators."""
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells, cur, in_code = [], [], False
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] == "|":
            cur.append("|")
            i += 2
            continue
        if c == "`":
            in_code = not in_code
        if c == "|" and not in_code:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    cells.append("".join(cur).strip())
    return cells


def split_outside_backticks(text, sep):
    parts, cur, in_code, i = [], [], False, 0
    while i < len(text):
        if text[i] == "`":
            in_code = not in_code
        if not in_code and text.startswith(sep, i):
            parts.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(text[i])
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts]


class DocRow:
    def __init__(self, key, default, line):
        self.key = key
        self.default = default
        self.line = line


class DocTable:
    def __init__(self, section, heading, heading_line, line):
        self.section = section  # None when the heading names no section
        self.heading = heading
        self.heading_line = heading_line
        self.line = line
        self.rows = []


SECTION_IN_HEADING = re.compile(r"`\s*(\[\[?\s*[A-Za-z0-9_.\-]+\s*\]?\])\s*`|^\s*(\[\[?[A-Za-z0-9_.\-]+\]?\])")


def heading_section(heading):
    m = SECTION_IN_HEADING.search(heading)
    if m:
        raw = (m.group(1) or m.group(2)).replace(" ", "")
        array = raw.startswith("[[")
        return raw.strip("[]"), array
    if re.search(r"\btop[- ]level\b|\broot\b", heading, re.I):
        return "", False
    return None


def parse_docs(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    tables = []
    heading, heading_line, section = None, 0, None
    i = 0
    in_fence = False
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith("```"):
            in_fence = not in_fence
            i += 1
            continue
        if in_fence:
            i += 1
            continue
        hm = re.match(r"^(#{1,6})\s+(.*)$", s)
        if hm:
            heading, heading_line = hm.group(2), i + 1
            section = heading_section(heading)
            i += 1
            continue
        if s.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?\s*:?-{2,}", lines[i + 1].strip()):
            header = [c.lower() for c in split_cells(s)]
            t = DocTable(section, heading, heading_line, i + 1)
            try:
                ki = next(k for k, c in enumerate(header) if c in ("key", "keys", "name", "field"))
                di = next(k for k, c in enumerate(header) if c.startswith("default"))
            except StopIteration:
                ki = di = None
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                if ki is not None:
                    cells = split_cells(lines[i])
                    if len(cells) > max(ki, di):
                        t.rows.append((cells[ki], cells[di], i + 1))
                i += 1
            if ki is not None:
                tables.append(t)
            continue
        i += 1
    return tables


def row_entries(key_cell, default_cell, line):
    """DocRows for one table row, splitting `a` / `b` keys and their defaults."""
    keys = re.findall(r"`([^`]+)`", key_cell)
    if not keys:
        keys = [k.strip() for k in key_cell.split("/") if k.strip()]
    keys = [k.strip() for k in keys]
    if len(keys) == 1:
        return [DocRow(keys[0], default_cell, line)]
    defaults = split_outside_backticks(default_cell, " / ")
    if len(defaults) != len(keys):
        defaults = [default_cell] * len(keys)
    return [DocRow(k, d, line) for k, d in zip(keys, defaults)]


# ---------------------------------------------------------------------------------------------
# Default text (docs cells and doc-comment phrases) -> a comparable claim.


class Claim:
    """kind: 'value' (with .value), 'none', 'required', 'ref' (names another key),
    'prose' (a description, not a value), 'empty' (nothing written)."""

    def __init__(self, kind, value=None, text=""):
        self.kind = kind
        self.value = value
        self.text = text


def parse_literal(s):
    s = s.strip()
    if s in ("true", "false"):
        return s == "true"
    n = parse_number(s)
    if n is not None:
        return n
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1]
    if s.startswith("[") and s.endswith("]"):
        return [parse_literal(x) for x in split_top(s[1:-1]) if x.strip()]
    if s.startswith("(") and s.endswith(")") and "," in s:
        return [parse_literal(x) for x in split_top(s[1:-1]) if x.strip()]
    return s


def parse_claim(text, other_keys=()):
    raw = text.strip()
    t = re.sub(r"\*\*|__", "", raw).strip()
    if not t or t in ("-", "—", "–"):
        return Claim("empty", text=raw)
    if t.startswith("="):
        return Claim("ref", text=raw)
    # Drop a trailing parenthesis: "unset (local)", "0 (off)".
    core = t
    pm = re.match(r"^(.+?)\s*\([^()]*\)\s*$", t)
    if pm and pm.group(1).strip():
        core = pm.group(1).strip()
    low = core.lower().strip(" .")
    if low == "required":
        return Claim("required", text=raw)
    if low in NONE_WORDS:
        return Claim("none", text=raw)
    spans = re.findall(r"`([^`]*)`", core)
    if spans and re.fullmatch(r"\s*`[^`]*`\s*", core):
        inner = spans[0].strip()
        if re.search(r"<[^<>]+>", inner):
            return Claim("prose", text=raw)
        if inner in other_keys:
            return Claim("ref", text=raw)
        return Claim("value", parse_literal(inner), raw)
    if "`" in core:
        return Claim("prose", text=raw)
    v = parse_literal(core)
    if isinstance(v, str) and (" " in v or not v):
        return Claim("prose", text=raw)
    if isinstance(v, str) and v in other_keys:
        return Claim("ref", text=raw)
    return Claim("value", v, raw)


DOC_DEFAULT_RE = re.compile(r"\bDefault\b\s*:?\s+")
DOC_PAREN_DEFAULT_RE = re.compile(r"`([^`]+)`\s*\(default\)")


def doc_comment_defaults(docs):
    """The value texts of the "Default X" phrases in a doc comment."""
    text = " ".join(d for d in docs)
    out = []
    for m in DOC_DEFAULT_RE.finditer(text):
        rest = text[m.end() :]
        if rest.startswith("`"):
            end = rest.find("`", 1)
            out.append(rest[: end + 1] if end > 0 else rest)
            continue
        em = re.match(r"(.*?)(?:\.(?=\s|$)|[;,(]|:\s|$)", rest)
        phrase = em.group(1).strip() if em else rest
        out.append(phrase)
    for m in DOC_PAREN_DEFAULT_RE.finditer(text):
        out.append("`%s`" % m.group(1))
    return out


def compare(claim, code, strict_prose):
    """None when the claim agrees with the code default, else a short reason."""
    if isinstance(code, Unknown) or code is TABLE:
        return None
    k = claim.kind
    if k == "empty":
        return "no default given"
    if code is REQUIRED:
        return None if k == "required" else "the key has no default"
    if code is NONE:
        if k in ("none", "ref", "prose"):
            return None
        if k == "required":
            return "the key is optional"
        return "unset is not a value"
    # A concrete value.
    if k == "value":
        return None if values_equal(claim.value, code) else "different value"
    if k == "none":
        return None if is_empty_value(code) else "the default is a value"
    if k == "required":
        return "the key is optional"
    if k in ("ref", "prose"):
        return "the docs do not state the value" if strict_prose else None
    return None


# ---------------------------------------------------------------------------------------------
# The check.


def rel(path):
    try:
        r = os.path.relpath(path)
    except ValueError:
        return path
    return path if r.startswith("..") else r


def check(args):
    problems = []
    notes = []
    src_paths = [p for p in (args.config_rs, args.rewards_rs, args.judge_rs, args.lora_rs) if p]
    try:
        sources = [Source(p) for p in src_paths]
    except OSError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    enum_sources = []
    if args.enum_src and os.path.isdir(args.enum_src):
        given = {os.path.abspath(p) for p in src_paths}
        for dirpath, dirnames, filenames in os.walk(args.enum_src):
            dirnames[:] = [d for d in dirnames if d not in ("target", ".git", "node_modules")]
            for fn in sorted(filenames):
                p = os.path.join(dirpath, fn)
                if fn.endswith(".rs") and os.path.abspath(p) not in given:
                    try:
                        enum_sources.append(Source(p))
                    except (OSError, UnicodeDecodeError):
                        pass
    model = Model(sources, enum_sources)
    sections = build_sections(model)
    try:
        tables = parse_docs(args.docs)
    except OSError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    docs = rel(args.docs)

    by_name = {s.name: s for s in sections}
    # Opaque tables (a struct type the checker was not given, e.g. [lora] without --lora-rs).
    opaque_names = {}
    for s in sections:
        for key, f in s.opaque.items():
            opaque_names[(s.name + "." if s.name else "") + key] = f

    def where(f):
        return "%s:%d" % (rel(f.path), f.line)

    # Code defaults the checker cannot evaluate.
    for s in sections:
        for key, f in s.keys.items():
            if isinstance(f.default, Unknown) and key not in s.opaque:
                notes.append("%s: note: %s %s: cannot evaluate the default (%s); not compared"
                             % (where(f), s.title, key, f.default.text))

    # Doc comments vs the code's own defaults.
    for s in sections:
        other = set(s.keys)
        for key, f in s.keys.items():
            if key in s.subsections or key in s.opaque:
                continue
            for phrase in doc_comment_defaults(f.docs):
                claim = parse_claim(phrase, other - {key})
                if claim.kind in ("prose", "ref", "empty"):
                    continue
                why = compare(claim, f.default, strict_prose=False)
                if why:
                    problems.append("%s: %s %s: doc comment says %s but the code's default is %s%s: %s"
                                    % (where(f), s.title, key, quote("Default " + phrase), fmt_value(f.default),
                                       def_where(f), why))

    # Docs tables vs code.
    seen_tables = {}
    for t in tables:
        if t.section is None:
            problems.append("%s:%d: table under heading \"%s\" names no TOML section (use `[section]` in the heading)"
                            % (docs, t.line, t.heading))
            continue
        name, array = t.section
        if name in opaque_names:
            continue
        sec = by_name.get(name)
        if sec is None:
            problems.append("%s:%d: section %s is documented but the code has no such table"
                            % (docs, t.heading_line, ("[[%s]]" if array else "[%s]") % name if name else "top level"))
            continue
        if name in seen_tables:
            problems.append("%s:%d: second table for %s (first at line %d)"
                            % (docs, t.line, sec.title, seen_tables[name].line))
            continue
        seen_tables[name] = t
        other = set(sec.keys)
        documented = {}
        for key_cell, default_cell, line in t.rows:
            for row in row_entries(key_cell, default_cell, line):
                key = row.key
                sub = re.fullmatch(r"\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]?\]", key)
                if sub:
                    full = sub.group(1)
                    prefix = name + "." if name else ""
                    key = full[len(prefix):] if full.startswith(prefix) else full
                field = None
                for k, f in sec.keys.items():
                    if key == k or key in f.keys:
                        field = f
                        key = k
                        break
                if field is None:
                    problems.append("%s:%d: %s %s: documented but not a key of %s (%s)"
                                    % (docs, row.line, sec.title, row.key, sec.struct.name,
                                       rel(sec.struct.path)))
                    continue
                if key in documented:
                    problems.append("%s:%d: %s %s: documented twice (also line %d)"
                                    % (docs, row.line, sec.title, key, documented[key]))
                    continue
                documented[key] = row.line
                claim = parse_claim(row.default, other - {key})
                if key in sec.subsections or key in sec.opaque:
                    # A table as a row of its parent: only "absent = none/empty" is checked.
                    code = field.default
                    if code is TABLE or isinstance(code, Unknown):
                        continue
                    why = compare(claim, code, strict_prose=False)
                else:
                    why = compare(claim, field.default, strict_prose=True)
                if why:
                    problems.append("%s:%d: %s %s: docs default %s but the code's default is %s%s: %s"
                                    % (docs, row.line, sec.title, key, quote(row.default),
                                       fmt_value(field.default), def_where(field), why))
        for key, f in sec.keys.items():
            if key in documented or key in sec.subsections or key in sec.opaque:
                continue
            problems.append("%s: %s %s: missing from %s (code default %s)"
                            % (where(f), sec.title, key, docs, fmt_value(f.default)))

    # Sections with no docs table.
    for s in sections:
        if s.name in seen_tables:
            continue
        keys = [k for k in s.keys if k not in s.subsections and k not in s.opaque]
        if not keys:
            continue
        f = getattr(s, "field", None)
        at = where(f) if f is not None else "%s:%d" % (rel(s.struct.path), s.struct.line)
        problems.append("%s: %s (struct %s): no table in %s; keys: %s"
                        % (at, s.title, s.struct.name, docs,
                           ", ".join("%s = %s" % (k, fmt_value(s.keys[k].default)) for k in keys)))

    for n in notes:
        print(n, file=sys.stderr)
    for p in problems:
        print(p)
    if problems:
        print("%d problem(s): docs and code disagree" % len(problems), file=sys.stderr)
        return 1
    nkeys = sum(len(s.keys) for s in sections)
    print("ok: %s agrees with the code (%d sections, %d keys)" % (docs, len(sections), nkeys))
    return 0


def quote(text):
    return "'%s'" % text if '"' in text else '"%s"' % text


def def_where(f):
    if f.default_where and (f.default_where[0] != f.path or f.default_where[1] != f.line):
        return " (set at %s:%d)" % (rel(f.default_where[0]), f.default_where[1])
    return ""


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="check_config_docs.py",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--config-rs", default=DEFAULT_PATHS["config_rs"],
                    help="Rust file defining %s (default: %%(default)s)" % ROOT_STRUCT)
    ap.add_argument("--rewards-rs", default=DEFAULT_PATHS["rewards_rs"],
                    help="Rust file defining RewardsConfig (default: %(default)s)")
    ap.add_argument("--judge-rs", default=DEFAULT_PATHS["judge_rs"],
                    help="Rust file defining the judge config (default: %(default)s)")
    ap.add_argument("--lora-rs", default=DEFAULT_PATHS["lora_rs"],
                    help="Rust file defining LoraConfig, the [lora] table; '' to leave [lora] "
                         "unchecked (default: %(default)s)")
    ap.add_argument("--docs", default=DEFAULT_PATHS["docs"],
                    help="the Markdown reference (default: %(default)s)")
    ap.add_argument("--enum-src", default=DEFAULT_PATHS["enum_src"],
                    help="folder searched (recursively, *.rs) for enum definitions, for their serde "
                         "names and #[default] variants; '' for none (default: %(default)s)")
    args = ap.parse_args(argv)
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
