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
//! Chinese terms are matched as substrings, since Chinese has no spaces,
//! in simplified and traditional characters.
//!
//! Before matching, a text is normalised so that a spelling trick does not
//! get a word through: compatibility forms are folded (full-width
//! `ｒｅｌｉｇｉｏｎ` is `religion`), accents dropped (`religión`), and
//! every character outside ASCII that is neither a letter nor a digit
//! removed (a soft hyphen, a zero-width space or a bidi control inside
//! `re­ligion`). A word in the plural matches its singular
//! (`churches`, `voices`, `party members`).

use toml::de::DeValue;
use toml::Spanned;

use super::source::Diagnostics;

/// Refuses every record type of the document in a protected category: one
/// problem per record type, at the first place that reveals it.
///
/// Runs on the text as parsed, before the shape check cuts what does not
/// fit, so that a field whose definition is broken (`type = "string"`) or a
/// record type that lacks a required key still has its names checked: the
/// protected category is reported with the other problem, not after it is
/// fixed.
pub(crate) fn refuse_protected(document: &Spanned<DeValue<'_>>, diag: &mut Diagnostics<'_>) {
    let items = document
        .get_ref()
        .get("record_type")
        .and_then(|value| value.get_ref().as_array());
    for item in items.into_iter().flat_map(|items| items.iter()) {
        let Some(table) = item.get_ref().as_table() else {
            continue;
        };
        let text = |key: &str| {
            table
                .get(key)
                .and_then(|value| Some((value.get_ref().as_str()?, value.span())))
        };
        let what = match text("id") {
            Some((id, _)) => format!("record type `{id}`"),
            None => "a record type without an id".to_string(),
        };
        let mut places: Vec<(&str, std::ops::Range<usize>, &str)> = Vec::new();
        for key in ["category", "id", "title"] {
            if let Some((value, span)) = text(key) {
                places.push((value, span, key));
            }
        }
        if let Some(fields) = table
            .get("fields")
            .and_then(|fields| fields.get_ref().as_table())
        {
            for name in fields.keys() {
                places.push((name.get_ref().as_ref(), name.span(), "field name"));
            }
        }
        let category_hit = text("category").and_then(|(category, span)| {
            protected_category(category).map(|hit| (hit, span, "category"))
        });
        let word_hit = || {
            places.iter().find_map(|(value, span, place)| {
                protected_word(value).map(|hit| (hit, span.clone(), *place))
            })
        };
        let Some((hit, span, place)) = category_hit.or_else(word_hit) else {
            continue;
        };
        diag.error(
            &span,
            format!(
                "{what} is refused: `{}` in its {place} names {}, a protected category that socred \
                 never collects (Credit Investigation Regulation art. 14, PIPL art. 28); see \
                 \"Protected categories\" in docs/rulebook.md",
                hit.found, hit.group
            ),
        );
    }
}

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
        words: &["dissent", "dissident", "protest", "protester", "ccp", "cpc"],
        stems: &["politic", "petition", "communis"],
        phrases: &[
            &["party", "member"],
            &["party", "membership"],
            &["party", "affiliation"],
            &["free", "speech"],
        ],
        hanzi: &[
            "政治", "言论", "言論", "上访", "上訪", "信访", "信訪", "党员", "黨員", "政党", "政黨",
        ],
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
            "faith",
            "church",
            "mosque",
            "temple",
            "synagogue",
            "worship",
            "prayer",
            "sect",
            "bible",
            "quran",
            "koran",
            "zakat",
            "christian",
            "catholic",
            "protestant",
            "muslim",
            "islam",
            "islamic",
            "buddhist",
            "buddhism",
            "taoist",
            "taoism",
            "hindu",
            "jewish",
            "judaism",
            "falun",
            "imam",
            "lama",
            "dalai",
            "monk",
            "priest",
            "pastor",
            "rabbi",
            "mullah",
            "hijab",
            "halal",
            "ramadan",
        ],
        stems: &["religio", "belief", "atheis", "christianit"],
        phrases: &[],
        hanzi: &[
            "宗教",
            "宗敎",
            "信仰",
            "教会",
            "教會",
            "礼拜",
            "禮拜",
            "佛教",
            "基督",
            "天主教",
            "伊斯兰",
            "伊斯蘭",
            "穆斯林",
            "清真",
            "法轮功",
            "法輪功",
            "喇嘛",
            "达赖",
            "達賴",
            "伊玛目",
            "伊瑪目",
        ],
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
        // "Nationality" is how 民族 (an ethnic group) is put in English in
        // China; a record of citizenship can say "citizenship".
        words: &[
            "race",
            "uyghur",
            "uighur",
            "tibetan",
            "kazakh",
            "hui",
            "zhuang",
            "manchu",
            "mongolian",
            "minority",
            "nationality",
        ],
        stems: &["ethnic", "racial"],
        phrases: &[],
        hanzi: &[
            "民族",
            "种族",
            "種族",
            "藏族",
            "维吾尔",
            "維吾爾",
            "回族",
            "少数民族",
        ],
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
        words: &["gene", "dna", "face", "iris", "voice", "retina", "gait"],
        stems: &[
            "genetic",
            "genom",
            "biometric",
            "fingerprint",
            "faceprint",
            "facial",
            "voiceprint",
            "palmprint",
        ],
        phrases: &[
            &["finger", "print"],
            &["face", "print"],
            &["voice", "print"],
        ],
        hanzi: &[
            "基因",
            "指纹",
            "指紋",
            "人脸",
            "人臉",
            "面部",
            "虹膜",
            "声纹",
            "聲紋",
            "生物识别",
            "生物識別",
            "步态",
            "步態",
        ],
    },
    Group {
        name: "health or medical history",
        categories: &["health", "medical", "medical_history", "health_data"],
        words: &[
            "blood",
            "hiv",
            "covid",
            "abortion",
            "hospital",
            "cancer",
            "tumor",
            "tumour",
            "dementia",
            "diabetes",
            "hepatitis",
            "tuberculosis",
            "disabled",
            "mental",
        ],
        stems: &[
            "health",
            "unhealth",
            "medic",
            "disease",
            "diagnos",
            "illness",
            "pregnan",
            "psychiatr",
            "disabilit",
            "vaccin",
            "addict",
            "bloodtype",
            "bloodgroup",
            "handicap",
            "psycholog",
            "therap",
        ],
        phrases: &[],
        hanzi: &[
            "健康",
            "病史",
            "病历",
            "病歷",
            "疾病",
            "血型",
            "医疗",
            "醫療",
            "诊断",
            "診斷",
            "残疾",
            "殘疾",
            "残障",
            "殘障",
            "精神病",
            "艾滋",
            "愛滋",
            "医院",
            "醫院",
            "癌",
            "肿瘤",
            "腫瘤",
            "肝炎",
            "结核",
            "結核",
        ],
    },
    Group {
        name: "sex life or orientation",
        categories: &["sex_life", "sexual_orientation", "sexuality", "orientation"],
        words: &[
            "orientation",
            "gay",
            "lesbian",
            "lgbt",
            "lgbtq",
            "bisexual",
            "sexlife",
        ],
        stems: &["sexual", "homosexual", "transgender"],
        phrases: &[&["sex", "life"], &["sex", "lives"]],
        hanzi: &["性取向", "性生活", "同性恋", "同性戀"],
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
        hanzi: &["工会", "工會"],
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
    let normalised = words(&normalise(category)).join("_");
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
    let normalised = normalise(text);
    let words = words(&normalised);
    let exempt = exempt_positions(&words);
    for group in GROUPS {
        for (index, word) in words.iter().enumerate() {
            if exempt.get(index).copied().unwrap_or(false) {
                continue;
            }
            let hit = group.words.iter().any(|keyword| is_word(word, keyword))
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
            if normalised.contains(term) {
                return Some(Hit {
                    group: group.name,
                    found: (*term).to_string(),
                });
            }
        }
    }
    None
}

/// `text` with compatibility forms folded (NFKD: full-width letters,
/// ligatures), accents and other combining marks dropped, and every other
/// character outside ASCII that is neither a letter nor a digit removed:
/// invisible ones (a soft hyphen, zero-width spaces and joiners, bidi
/// controls, the byte-order mark) and any other mark set inside a word to
/// split it. The Hangul fillers, which count as letters but show nothing,
/// go too; so do control characters. ASCII punctuation and spaces stay:
/// they are what separates words.
fn normalise(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    let shows_nothing = |c: char| {
        c.is_control()
            || matches!(c, '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}')
            || (!c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace())
    };
    text.nfkd()
        .filter(|&c| !is_combining_mark(c) && !shows_nothing(c))
        .collect()
}

/// Whether `word` is `keyword`, or its plural (`churches`, `voices`,
/// `parties`).
fn is_word(word: &str, keyword: &str) -> bool {
    word == keyword
        || word.strip_suffix('s') == Some(keyword)
        || word.strip_suffix("es") == Some(keyword)
        || word
            .strip_suffix("ies")
            .is_some_and(|stem| keyword.strip_suffix('y') == Some(stem))
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
        .all(|(word, expected)| is_word(word, expected))
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
    fn spelling_tricks_plurals_and_other_scripts_do_not_get_a_word_through() {
        for text in [
            "churches",
            "voices",
            "Party Members",
            "sex_lives",
            "sexlife",
            "héalth",
            "religión",
            "ｒｅｌｉｇｉｏｎ",
            "re\u{ad}ligion",
            "reli\u{200b}gion",
            "reli\u{2066}gion",
            "reli\u{202c}gion",
            "reli\u{61c}gion",
            "reli\u{3164}gion",
            "reli\u{1}gion",
            "宗\u{2066}教",
            "christian",
            "muslim_customers",
            "buddhist",
            "synagogue",
            "bible_study",
            "zakat",
            "falun_gong",
            "uyghur",
            "tibetan",
            "bloodtype",
            "finger_print",
            "faceprint",
            "healthcare",
            "unhealthy",
            "hospitals",
            "medicine",
            "vaccination",
            "covid",
            "abortion",
            "drug_addiction",
            "佛教",
            "基督教",
            "伊斯兰",
            "穆斯林",
            "清真",
            "法轮功",
            "藏族",
            "维吾尔",
            "党员",
            "共产党员",
            "政党",
            "残疾",
            "残障",
            "精神病",
            "艾滋病",
            "病历",
            "種族",
            "宗敎",
            "minority",
            "minorities",
            "hui_nationality",
            "ccp_membership",
            "communist_party",
            "cancer",
            "handicap",
            "handicapped",
            "imam",
            "dalai_lama",
            "mental_health",
            "psychological_evaluation",
            "癌症",
        ] {
            assert!(protected_word(text).is_some(), "{text}");
        }
        // A category is folded the same way before it is compared.
        assert!(protected_category("Ｈｅａｌｔｈ").is_some());
        assert!(protected_category("relig\u{ad}ion").is_some());
        assert!(protected_category("reli\u{2066}gion").is_some());
    }

    #[test]
    fn ordinary_words_near_the_keywords_stay_allowed() {
        for text in [
            "hospitality.hotel_fees",
            "teaching_aids",
            "account_suspended",
            "surface",
            "invoices",
            "generally",
            "tax.invoice_fraud",
            "positive.blood_donations",
            "market.medical_device_recall",
            "social.volunteering",
            "commercial.contract_breach",
            "transport.fare_evasion",
            "judicial.judgment_default",
            "huijin_bank_arrears",
            "monkey_bars",
            "pastoral_land_lease",
            "priestley_street",
        ] {
            let expected = text.contains("medical");
            assert_eq!(protected_word(text).is_some(), expected, "{text}");
        }
    }

    #[test]
    fn categories_are_normalised() {
        assert!(protected_category("Sexual Orientation").is_some());
        assert!(protected_category("trade-union").is_some());
        assert!(protected_category("judicial").is_none());
    }
}
