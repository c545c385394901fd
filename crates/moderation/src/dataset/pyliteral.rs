//! A parser for the Python literals (`repr()`) in the HateXplain re-export. Written by hand: no
//! maintained crate parses Python literals, and the subset needed is small.

/// A Python literal, as written by `repr()` in the HateXplain re-export.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Py {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

impl Py {
    pub(super) fn get(&self, key: &str) -> Option<&Py> {
        match self {
            Py::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Py::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub(super) fn as_list(&self) -> Option<&[Py]> {
        match self {
            Py::List(items) => Some(items),
            _ => None,
        }
    }

    pub(super) fn as_int(&self) -> Option<i64> {
        match self {
            Py::Int(i) => Some(*i),
            Py::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Py::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses a Python literal (lists, tuples, dicts, strings, ints, floats, None, True, False).
pub(super) fn parse_py(src: &str) -> Result<Py, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut p = PyParser { chars, pos: 0 };
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != p.chars.len() {
        return Err(format!("trailing characters at position {}", p.pos));
    }
    Ok(value)
}

struct PyParser {
    chars: Vec<char>,
    pos: usize,
}

impl PyParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {c:?} at position {}", self.pos))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Py, String> {
        if depth > 64 {
            return Err("nesting too deep".into());
        }
        self.skip_ws();
        match self.peek() {
            Some('[') => self.sequence('[', ']', depth).map(Py::List),
            Some('(') => self.sequence('(', ')', depth).map(Py::List),
            Some('{') => self.dict(depth),
            Some(q @ ('\'' | '"')) => self.string(q).map(Py::Str),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "None" => Ok(Py::None),
                    "True" => Ok(Py::Bool(true)),
                    "False" => Ok(Py::Bool(false)),
                    other => Err(format!("unexpected name {other:?}")),
                }
            }
            Some(c) => Err(format!("unexpected {c:?} at position {}", self.pos)),
            None => Err("unexpected end of input".into()),
        }
    }

    fn sequence(&mut self, open: char, close: char, depth: usize) -> Result<Vec<Py>, String> {
        self.expect(open)?;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected ',' or {close:?} at position {}",
                        self.pos
                    ))
                }
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Py, String> {
        self.expect('{')?;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(Py::Dict(items));
            }
            let key = self.value(depth + 1)?;
            self.expect(':')?;
            let value = self.value(depth + 1)?;
            items.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                _ => return Err(format!("expected ',' or '}}' at position {}", self.pos)),
            }
        }
    }

    fn hex(&mut self, digits: usize) -> Result<char, String> {
        let end = self.pos + digits;
        if end > self.chars.len() {
            return Err("truncated escape".into());
        }
        let hex: String = self.chars[self.pos..end].iter().collect();
        self.pos = end;
        u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("bad escape \\{hex}"))
    }

    fn string(&mut self, quote: char) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or("unterminated escape")?;
                    self.pos += 1;
                    match esc {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        'x' => out.push(self.hex(2)?),
                        'u' => out.push(self.hex(4)?),
                        'U' => out.push(self.hex(8)?),
                        '\\' | '\'' | '"' => out.push(esc),
                        '\n' => {}
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Py, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Py::Int(i));
        }
        text.parse::<f64>()
            .map(Py::Float)
            .map_err(|_| format!("bad number {text:?}"))
    }
}
