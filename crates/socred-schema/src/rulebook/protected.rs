//! Refuses record types in protected categories: political opinion or
//! expression, religion or belief, ethnicity, genetic or biometric data,
//! health or medical history, sex life or orientation, trade-union
//! membership.
//!
//! The Credit Investigation Regulation (art. 14) bans collecting religion,
//! genes, fingerprints, blood type and medical history; PIPL art. 28 and GDPR
//! art. 9 name the rest. A catalog entry is refused when its category is one
//! of these, or when its id, title, category or a field name carries a word
//! that names one.
//!
//! Words, not substrings: names are split into words at every character that
//! is not a letter or digit (`positive.blood_donation` is `positive`,
//! `blood`, `donation`). A keyword matches a whole word (`gene` does not fire
//! on `general`, `voice` not on `invoice`) or, for stems, the start of a word
//! (`religio` matches `religious`). Some keywords are phrases of consecutive
//! words (`trade union`). A few phrases that name conduct rather than a trait
//! are exempt, and listed here on purpose so that every exception is visible:
//! `blood donation` and `blood donor` (giving blood is civic conduct, not
//! health data), `good faith` and `bad faith` (legal terms, not belief).
//! Chinese terms are matched as substrings, since Chinese has no spaces.

/// One protected group and the words that reveal it.
struct Group {
    /// How messages name the group.
    name: &'static str,
    /// Category values that are this group outright (after normalising to
    /// lower case with `_` between words).
    categories: &'static [&'static str],
    /// Whole words.
    words: &'static [&'static str],
    /// Word starts.
    stems: &'static [&'static str],
    /// Runs of consecutive whole words.
    phrases: &'static [&'static [&'static str]],
    /// Chinese substrings.
    hanzi: &'static [&'static str],
}

const GROUPS: &[Group] = &[
    Group {
        name: "political opinion or expression",
        categories: &[
            "political",
            "politics",
            "political_opinion",
            "political_expression",
            "political_affiliation",
            "opinion",
            "expression",
            "speech",
        ],
        words: &["dissent", "dissident", "protest", "protester", "protests"],
        stems: &["politic", "petition"],
        phrases: &[
            &["party", "member"],
            &["party", "membership"],
            &["free", "speech"],
        ],
        hanzi: &["政治", "言论", "上访", "信访"],
    },
    Group {
        name: "religion or belief",
        categories: &[
            "religion",
            "religious",
            "belief",
            "beliefs",
            "faith",
            "religion_or_belief",
        ],
        words: &[
            "faith", "church", "mosque", "temple", "worship", "prayer", "sect",
        ],
        stems: &["religio", "belief", "atheis"],
        phrases: &[],
        hanzi: &["宗教", "信仰", "教会", "礼拜"],
    },
    Group {
        name: "ethnicity",
        categories: &[
            "ethnicity",
            "ethnic",
            "ethnic_origin",
            "race",
            "racial_origin",
        ],
        words: &["race", "races"],
        stems: &["ethnic", "racial"],
        phrases: &[],
        hanzi: &["民族", "种族"],
    },
    Group {
        name: "genetic or biometric data",
        categories: &[
            "genetic",
            "genetic_data",
            "biometric",
            "biometric_data",
            "biometrics",
        ],
        words: &[
            "gene", "genes", "dna", "face", "faces", "iris", "voice", "retina", "gait",
        ],
        stems: &[
            "genetic",
            "genom",
            "biometric",
            "fingerprint",
            "facial",
            "voiceprint",
            "palmprint",
        ],
        phrases: &[],
        hanzi: &[
            "基因",
            "指纹",
            "人脸",
            "面部",
            "虹膜",
            "声纹",
            "生物识别",
            "步态",
        ],
    },
    Group {
        name: "health or medical history",
        categories: &["health", "medical", "medical_history", "health_data"],
        words: &["health", "blood", "hiv"],
        stems: &[
            "medical",
            "disease",
            "diagnos",
            "illness",
            "pregnan",
            "psychiatr",
            "disabilit",
        ],
        phrases: &[],
        hanzi: &["健康", "病史", "疾病", "血型", "医疗", "诊断"],
    },
    Group {
        name: "sex life or orientation",
        categories: &["sex_life", "sexual_orientation", "sexuality", "orientation"],
        words: &["orientation", "gay", "lesbian", "lgbt", "lgbtq", "bisexual"],
        stems: &["sexual", "homosexual", "transgender"],
        phrases: &[&["sex", "life"]],
        hanzi: &["性取向", "性生活", "同性恋"],
    },
    Group {
        name: "trade-union membership",
        categories: &["trade_union", "trade_union_membership", "union_membership"],
        words: &["unionist", "unionised", "unionized"],
        stems: &[],
        phrases: &[
            &["trade", "union"],
            &["trade", "unions"],
            &["union", "member"],
            &["union", "membership"],
            &["labour", "union"],
            &["labor", "union"],
        ],
        hanzi: &["工会"],
    },
];

/// Phrases whose words never count as a hit, wherever they occur.
const EXEMPT: &[&[&str]] = &[
    &["blood", "donation"],
    &["blood", "donations"],
    &["blood", "donor"],
    &["blood", "donors"],
    &["good", "faith"],
    &["bad", "faith"],
];

/// What a name of a record type revealed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    pub group: &'static str,
    /// The word, phrase or category that matched.
    pub found: String,
}

/// Whether a category value is a protected category outright.
pub(crate) fn protected_category(category: &str) -> Option<Hit> {
    let normalised = words(category).join("_");
    for group in GROUPS {
        if group.categories.contains(&normalised.as_str()) {
            return Some(Hit {
                group: group.name,
                found: normalised,
            });
        }
    }
    None
}

/// The first protected word in `text` (an id, title, category or field
/// name), if any.
pub(crate) fn protected_word(text: &str) -> Option<Hit> {
    let words = words(text);
    let exempt = exempt_positions(&words);
    for group in GROUPS {
        for (index, word) in words.iter().enumerate() {
            if exempt.get(index).copied().unwrap_or(false) {
                continue;
            }
            let hit = group.words.contains(&word.as_str())
                || group.stems.iter().any(|stem| word.starts_with(stem));
            if hit {
                return Some(Hit {
                    group: group.name,
                    found: word.clone(),
                });
            }
            for phrase in group.phrases {
                if starts_phrase(&words, index, phrase) {
                    return Some(Hit {
                        group: group.name,
                        found: phrase.join(" "),
                    });
                }
            }
        }
        for term in group.hanzi {
            if text.contains(term) {
                return Some(Hit {
                    group: group.name,
                    found: (*term).to_string(),
                });
            }
        }
    }
    None
}

/// Lower-case words of `text`, split at anything that is not a letter or
/// digit.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn starts_phrase(words: &[String], index: usize, phrase: &[&str]) -> bool {
    let Some(run) = words.get(index..index + phrase.len()) else {
        return false;
    };
    run.iter()
        .zip(phrase)
        .all(|(word, expected)| word == expected)
}

/// For each word, whether it is part of an exempt phrase.
fn exempt_positions(words: &[String]) -> Vec<bool> {
    let mut exempt = vec![false; words.len()];
    for index in 0..words.len() {
        for phrase in EXEMPT {
            if starts_phrase(words, index, phrase) {
                for flag in exempt.iter_mut().skip(index).take(phrase.len()) {
                    *flag = true;
                }
            }
        }
    }
    exempt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(text: &str) -> Option<&'static str> {
        protected_word(text).map(|hit| hit.group)
    }

    #[test]
    fn whole_words_and_stems_fire_but_substrings_do_not() {
        assert_eq!(
            group("social.religious_activity"),
            Some("religion or belief")
        );
        assert_eq!(
            group("biometric.face_scan"),
            Some("genetic or biometric data")
        );
        assert_eq!(group("severity general"), None);
        assert_eq!(group("tax.invoice_fraud"), None);
        assert_eq!(group("surface_damage"), None);
        assert_eq!(
            group("trade.union_member_dues"),
            Some("trade-union membership")
        );
        assert_eq!(group("trade_license"), None);
        assert_eq!(group("宗教活动"), Some("religion or belief"));
    }

    #[test]
    fn exempt_phrases_cover_only_their_own_words() {
        assert_eq!(group("positive.blood_donation"), None);
        assert_eq!(group("Voluntary blood donation"), None);
        assert_eq!(group("judicial.bad_faith_litigation"), None);
        assert_eq!(
            group("health.blood_type"),
            Some("health or medical history")
        );
        assert_eq!(
            group("blood_test after blood donation"),
            Some("health or medical history")
        );
        assert_eq!(group("religious faith"), Some("religion or belief"));
    }

    #[test]
    fn categories_are_normalised() {
        assert!(protected_category("Sexual Orientation").is_some());
        assert!(protected_category("trade-union").is_some());
        assert!(protected_category("judicial").is_none());
    }
}
