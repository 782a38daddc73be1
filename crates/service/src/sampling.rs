//! The one mapping from `[sampling]` to the sampling every request starts from. The CLI's
//! `run` and every HTTP route begin with these values and apply the request's own fields.

/// Per-request sampling defaults (`[sampling]`: file < env < flags such as `--temp`).
/// llama-server's `POST /props` changes them at run time.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingDefaults {
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    /// `None`: random.
    pub seed: Option<u32>,
    /// The token limit of requests that set none; `None`: no limit.
    pub n_predict: Option<u32>,
}

impl SamplingDefaults {
    pub fn from_config(c: &config::SamplingConfig) -> Self {
        SamplingDefaults {
            temperature: c.temperature as f32,
            top_k: i32::try_from(c.top_k).unwrap_or(i32::MAX),
            top_p: c.top_p as f32,
            min_p: c.min_p as f32,
            repeat_penalty: c.repeat_penalty as f32,
            seed: u32::try_from(c.seed).ok(),
            n_predict: u32::try_from(c.n_predict).ok(),
        }
    }

    /// The defaults a request's checked sampling parameters set (`POST /props`); the token
    /// limit stays the server's.
    pub fn from_params(s: &engine::SamplingParams) -> Self {
        SamplingDefaults {
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            repeat_penalty: s.repeat_penalty,
            seed: s.seed,
            n_predict: None,
        }
    }

    /// Engine sampling parameters starting from these defaults.
    pub fn params(&self) -> engine::SamplingParams {
        engine::SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            seed: self.seed,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configured_value_reaches_the_engine() {
        let mut c = config::Config::default();
        for (k, v) in [
            ("sampling.temperature", "0.25"),
            ("sampling.top_k", "7"),
            ("sampling.top_p", "0.5"),
            ("sampling.min_p", "0.125"),
            ("sampling.repeat_penalty", "1.5"),
            ("sampling.seed", "42"),
            ("sampling.n_predict", "-1"),
        ] {
            c.set(k, v).unwrap();
        }
        let p = SamplingDefaults::from_config(&c.sampling).params();
        assert_eq!(
            (p.temperature, p.top_k, p.top_p, p.min_p, p.repeat_penalty),
            (0.25, 7, 0.5, 0.125, 1.5)
        );
        assert_eq!(p.seed, Some(42));
        assert_eq!(SamplingDefaults::from_config(&c.sampling).n_predict, None);
        assert_eq!(
            SamplingDefaults::from_params(&p),
            SamplingDefaults::from_config(&c.sampling)
        );
    }
}
