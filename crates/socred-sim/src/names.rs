//! Words the generator builds names, titles and statements from. Pinyin and
//! English keep the output ASCII-friendly while still reading like the
//! registers it imitates.

pub const SYLLABLES: [&str; 24] = [
    "Hua", "Xin", "Tai", "Sheng", "Long", "Feng", "Jin", "Heng", "Da", "Yuan", "Kang", "Rui",
    "Tong", "Hong", "Fu", "An", "Jia", "Ming", "Xing", "Bao", "Cheng", "De", "Guang", "Hai",
];

pub const INDUSTRIES: [&str; 14] = [
    "Trading",
    "Technology",
    "Construction",
    "Food",
    "Logistics",
    "Textile",
    "Pharmaceutical",
    "Electronics",
    "Catering",
    "Real Estate",
    "Consulting",
    "Machinery",
    "New Energy",
    "Agricultural Products",
];

pub const SURNAMES: [&str; 20] = [
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma",
    "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo",
];

pub const SHOPS: [&str; 10] = [
    "Noodle Shop",
    "Grocery Store",
    "Hardware Store",
    "Tea House",
    "Barber Shop",
    "Fruit Stall",
    "Repair Shop",
    "Snack Bar",
    "Tailor's Shop",
    "Stationery Shop",
];

pub const CROPS: [&str; 7] = [
    "Vegetable",
    "Tea",
    "Fruit",
    "Grain",
    "Poultry",
    "Mushroom",
    "Aquaculture",
];

pub const INSTITUTIONS: [&str; 7] = [
    "People's Hospital",
    "No. 1 Middle School",
    "No. 3 Primary School",
    "Maternal and Child Health Hospital",
    "Cultural Centre",
    "Public Library",
    "Centre for Disease Control",
];

pub const BUREAUS: [&str; 5] = [
    "Bureau of Civil Affairs",
    "Bureau of Housing and Urban-Rural Development",
    "Bureau of Natural Resources",
    "Bureau of Human Resources and Social Security",
    "Sub-district Office",
];

pub const ASSOCIATIONS: [&str; 5] = [
    "Catering Association",
    "General Chamber of Commerce",
    "Photographers' Association",
    "Calligraphers' Association",
    "Logistics Association",
];

pub const NON_ENTERPRISES: [&str; 5] = [
    "Kindergarten",
    "Elderly Care Centre",
    "Vocational Training School",
    "Community Service Centre",
    "Rehabilitation Centre",
];

pub const PERSON_HONOURS: [&str; 7] = [
    "Model Worker",
    "Good Samaritan",
    "Filial Piety Model",
    "Outstanding Volunteer",
    "Civilised Family",
    "Moral Model",
    "Good Neighbour",
];

pub const ORG_HONOURS: [&str; 4] = [
    "Contract-Abiding and Credit-Worthy Enterprise",
    "Civilised Unit",
    "Harmonious Labour Relations Enterprise",
    "Model Employer",
];

/// Honour levels and their relative frequency: village honours are common,
/// national ones rare.
pub const HONOUR_LEVELS: [(&str, u32); 6] = [
    ("village", 35),
    ("township", 25),
    ("county", 20),
    ("municipal", 12),
    ("provincial", 6),
    ("national", 2),
];

/// Why a judgment debtor is listed (Supreme People's Court provisions on the
/// list of dishonest judgment debtors), with relative frequency.
pub const DEFAULT_TRIGGERS: [(&str, u32); 6] = [
    ("ability_refused", 60),
    ("property_report_refused", 15),
    ("sanction_violation", 12),
    ("obstruction_false_evidence", 7),
    ("false_litigation", 4),
    ("violent_resistance", 2),
];

pub const GRADE_D_REASONS: [&str; 5] = [
    "issuing false VAT invoices",
    "tax evasion established by inspection",
    "no tax returns filed for three consecutive months",
    "refusal to cooperate with a tax inspection",
    "tax arrears unpaid after a final notice",
];

pub const DISPUTE_STATEMENTS: [&str; 5] = [
    "The debt was settled before the decision; receipts are attached.",
    "I was not involved: my identity card was used by someone else.",
    "The amount recorded is wrong.",
    "The fare was paid; the ticket was lost and a replacement was shown.",
    "The fee was contested with the property company and has been paid in full.",
];

/// Train number prefixes and their share of trains.
pub const TRAIN_PREFIXES: [(&str, u32); 5] = [("G", 55), ("D", 20), ("K", 15), ("Z", 5), ("T", 5)];
