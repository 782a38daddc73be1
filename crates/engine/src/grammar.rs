//! Grammar size checks, done before llama.cpp sees a grammar, and the stack its parser runs on.
//!
//! llama.cpp's grammar code is recursive: the parser recurses once per nested group, the
//! left-recursion check and the stack advance once per rule reference at the start of a
//! rule. `root ::= ((((…))))` 30,000 deep, or a chain of 10,000 rules `r0 ::= r1`, overflows
//! any thread's stack and aborts the process. So a grammar's depth and rule count are
//! measured here first, without recursion, and refused above the caller's [`Caps`]; and
//! every thread that parses or samples a grammar has [`GRAMMAR_STACK`] bytes of stack, which
//! a test shows is enough for the deepest grammar the default limit lets through.

use std::collections::HashMap;

use crate::error::{EngineError, Limit};
use crate::request::{Caps, MAX_GRAMMAR_DEPTH};

/// Stack for threads that run llama.cpp's grammar code: the admission thread that converts
/// and parses grammars ([`on_grammar_stack`]) and the model's host thread (which advances
/// grammar stacks while sampling). Only touched pages are committed, so it costs address
/// space, not memory.
pub(crate) const GRAMMAR_STACK: usize = 64 << 20;

/// How big a GBNF grammar is, as far as llama.cpp's recursion goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Rule definitions.
    pub rules: u64,
    /// An upper bound of the longest chain of nested groups and rule references.
    pub depth: u64,
}

/// Refuses a JSON schema nested deeper than the grammar depth cap (the converter recurses
/// once per level), then the converted or given GBNF above either cap.
pub(crate) fn check_schema(schema: &serde_json::Value, caps: &Caps) -> Result<(), EngineError> {
    Limit::GrammarDepth.check(json_depth(schema), max_depth(caps))
}

pub(crate) fn check_gbnf(gbnf: &str, caps: &Caps) -> Result<(), EngineError> {
    let shape = shape(gbnf);
    Limit::GrammarRules.check(shape.rules, caps.grammar_rules.into())?;
    Limit::GrammarDepth.check(shape.depth, max_depth(caps))
}

/// The caller's depth cap, never above what the grammar stack holds.
fn max_depth(caps: &Caps) -> u64 {
    caps.grammar_depth.min(MAX_GRAMMAR_DEPTH).into()
}

/// Runs `f` on a thread with [`GRAMMAR_STACK`] bytes of stack and waits for it: grammar
/// conversion and parsing happen wherever a request is prepared (a tokio worker has 2 MiB).
pub(crate) fn on_grammar_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("grammar".into())
            .stack_size(GRAMMAR_STACK)
            .spawn_scoped(s, f)
            .expect("spawn the grammar thread")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Nesting depth of a JSON value (a scalar is 1), without recursion.
fn json_depth(v: &serde_json::Value) -> u64 {
    use serde_json::Value;
    let mut max = 0;
    let mut todo = vec![(v, 1u64)];
    while let Some((v, d)) = todo.pop() {
        max = max.max(d);
        match v {
            Value::Array(a) => todo.extend(a.iter().map(|c| (c, d + 1))),
            Value::Object(o) => todo.extend(o.values().map(|c| (c, d + 1))),
            _ => {}
        }
    }
    max
}

/// Measures a GBNF text: rule definitions, and the longest chain of references between
/// rules where each rule counts 1 plus its deepest group (llama.cpp makes every group a
/// rule of its own). Rules that reference each other in a cycle count together, so the
/// figure bounds every chain llama.cpp can follow. Literals, character classes, tokens and
/// comments are skipped; text llama.cpp would reject is measured anyway (it rejects it
/// after). Linear in the text, no recursion.
pub(crate) fn shape(gbnf: &str) -> Shape {
    let b = gbnf.as_bytes();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut weight: Vec<u64> = Vec::new();
    let mut refs: Vec<Vec<usize>> = Vec::new();
    // References by name, resolved once every definition is known.
    let mut named: Vec<(usize, &str)> = Vec::new();
    let mut current: Option<usize> = None;
    let mut depth: u64 = 0;
    let mut i = 0;
    while i < b.len() {
        if let Some(after) = skip_opaque(b, i) {
            i = after;
            continue;
        }
        match b[i] {
            b'(' => {
                depth += 1;
                if let Some(r) = current {
                    weight[r] = weight[r].max(1 + depth);
                }
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if is_word(c) => {
                let start = i;
                while i < b.len() && is_word(b[i]) {
                    i += 1;
                }
                let name = &gbnf[start..i];
                let mut j = i;
                while j < b.len() && matches!(b[j], b' ' | b'\t') {
                    j += 1;
                }
                if b[j..].starts_with(b"::=") {
                    let next = ids.len();
                    let r = *ids.entry(name).or_insert(next);
                    if r == weight.len() {
                        weight.push(1);
                        refs.push(Vec::new());
                    }
                    current = Some(r);
                    depth = 0;
                    i = j + 3;
                } else if let Some(r) = current {
                    named.push((r, name));
                }
            }
            _ => i += 1,
        }
    }
    for (from, name) in named {
        if let Some(&to) = ids.get(name) {
            refs[from].push(to);
        }
    }
    Shape {
        rules: weight.len() as u64,
        depth: longest_chain(&weight, &refs),
    }
}

/// If a literal, character class, token or comment starts at `i`, the index after it: GBNF
/// text whose brackets, braces and words mean nothing to the grammar's structure.
pub(crate) fn skip_opaque(b: &[u8], i: usize) -> Option<usize> {
    let close = match b[i] {
        b'"' => b'"',
        b'[' => b']',
        b'<' => b'>',
        b'#' => b'\n',
        _ => return None,
    };
    let mut j = i + 1;
    while j < b.len() && b[j] != close {
        j += if b[j] == b'\\' && close != b'\n' {
            2
        } else {
            1
        };
    }
    Some(j + 1)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// The heaviest path through the graph of rules, where a strongly connected component (rules
/// that reach each other) weighs the sum of its rules. Tarjan's algorithm with an explicit
/// stack: components come out successors first, so each one's chain is known when needed.
fn longest_chain(weight: &[u64], refs: &[Vec<usize>]) -> u64 {
    const UNSEEN: usize = usize::MAX;
    struct Walk {
        index: Vec<usize>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        calls: Vec<(usize, usize)>,
        next: usize,
    }
    impl Walk {
        fn visit(&mut self, v: usize) {
            self.index[v] = self.next;
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            self.calls.push((v, 0));
        }
    }
    let n = weight.len();
    let mut w = Walk {
        index: vec![UNSEEN; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        calls: Vec::new(),
        next: 0,
    };
    let mut comp = vec![UNSEEN; n];
    let mut chain: Vec<u64> = Vec::new(); // per component, in the order they come out
    for root in 0..n {
        if w.index[root] != UNSEEN {
            continue;
        }
        w.visit(root);
        while let Some(&(v, e)) = w.calls.last() {
            if let Some(&to) = refs[v].get(e) {
                w.calls.last_mut().expect("not empty").1 += 1;
                if w.index[to] == UNSEEN {
                    w.visit(to);
                } else if w.on_stack[to] {
                    w.low[v] = w.low[v].min(w.index[to]);
                }
                continue;
            }
            w.calls.pop();
            if let Some(&(u, _)) = w.calls.last() {
                w.low[u] = w.low[u].min(w.low[v]);
            }
            if w.low[v] == w.index[v] {
                let c = chain.len();
                let mut members = Vec::new();
                loop {
                    let m = w.stack.pop().expect("v is on the stack");
                    w.on_stack[m] = false;
                    comp[m] = c;
                    members.push(m);
                    if m == v {
                        break;
                    }
                }
                let own: u64 = members.iter().map(|&m| weight[m]).sum();
                let below = members
                    .iter()
                    .flat_map(|&m| &refs[m])
                    .filter(|&&to| comp[to] != c)
                    .map(|&to| chain[comp[to]])
                    .max()
                    .unwrap_or(0);
                chain.push(own + below);
            }
        }
    }
    chain.into_iter().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nested(levels: usize) -> String {
        format!("root ::= {}\"a\"{}", "(".repeat(levels), ")".repeat(levels))
    }

    fn chain(rules: usize) -> String {
        let mut g = String::from("root ::= r0\n");
        for i in 0..rules - 1 {
            g.push_str(&format!("r{i} ::= r{}\n", i + 1));
        }
        g.push_str(&format!("r{} ::= \"a\"\n", rules - 1));
        g
    }

    #[test]
    fn the_attack_grammars_are_measured_without_recursion() {
        assert_eq!(shape(&nested(30_000)).depth, 30_001);
        let s = shape(&chain(10_000));
        assert_eq!(s.rules, 10_001);
        assert_eq!(s.depth, 10_001);
    }

    #[test]
    fn groups_count_inside_their_rule_only() {
        let s = shape("root ::= (a (b)) \"(((\" [(] # (((\na ::= \"x\"\nb ::= (\"y\")");
        assert_eq!(s.rules, 3);
        // root weighs 3 (two nested groups), then b (weight 2).
        assert_eq!(s.depth, 5);
    }

    #[test]
    fn recursive_rules_count_once_per_cycle() {
        // json.gbnf's shape: value -> object -> value is a cycle, not an endless chain.
        let g = r#"
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]*)) ("." [0-9]+)? ([eE] [-+]? [0-9]+)? ws
ws ::= ([ \t\n] ws)?
"#;
        let s = shape(g);
        assert_eq!(s.rules, 7);
        assert!(s.depth < 30, "{s:?}");
    }

    #[test]
    fn caps_name_the_limit() {
        let caps = Caps {
            grammar_depth: 10,
            grammar_rules: 5,
            ..Caps::default()
        };
        assert!(check_gbnf(&nested(9), &caps).is_ok());
        assert_eq!(
            check_gbnf(&nested(10), &caps),
            Err(EngineError::OverLimit {
                limit: Limit::GrammarDepth,
                value: 11,
                max: 10
            })
        );
        assert!(matches!(
            check_gbnf(&chain(5), &caps),
            Err(EngineError::OverLimit {
                limit: Limit::GrammarRules,
                ..
            })
        ));
        let mut deep = serde_json::json!({"type": "string"});
        for _ in 0..20 {
            deep = serde_json::json!({"type": "array", "items": deep});
        }
        assert!(matches!(
            check_schema(&deep, &caps),
            Err(EngineError::OverLimit {
                limit: Limit::GrammarDepth,
                ..
            })
        ));
        assert!(check_schema(&serde_json::json!({"type": "object"}), &caps).is_ok());
    }

    proptest! {
        /// Any grammar of `rules` rules, each referencing only later ones inside `groups`
        /// nested groups, measures within its true bound; the chain it builds is refused
        /// by a cap just under it.
        #[test]
        fn measured_depth_bounds_the_real_chain(rules in 1usize..40, groups in 0usize..6, fan in 1usize..4) {
            let mut g = String::new();
            for i in 0..rules {
                let name = if i == 0 { "root".to_string() } else { format!("r{i}") };
                let body: Vec<String> = (1..=fan)
                    .map(|k| i + k)
                    .filter(|&j| j < rules)
                    .map(|j| format!("r{j}"))
                    .chain(std::iter::once("\"x\"".to_string()))
                    .collect();
                g.push_str(&format!(
                    "{name} ::= {}{}{}\n",
                    "(".repeat(groups),
                    body.join(" | "),
                    ")".repeat(groups)
                ));
            }
            let s = shape(&g);
            prop_assert_eq!(s.rules, rules as u64);
            // The chain root -> r1 -> ... through every rule, each weighing 1 + groups.
            prop_assert_eq!(s.depth, (rules * (1 + groups)) as u64);
            let caps = Caps { grammar_depth: s.depth as u32, grammar_rules: rules as u32, ..Caps::default() };
            prop_assert!(check_gbnf(&g, &caps).is_ok());
            let tight = Caps { grammar_depth: s.depth as u32 - 1, ..caps };
            prop_assert!(check_gbnf(&g, &tight).is_err());
        }
    }
}
