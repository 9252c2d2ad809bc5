//! The record types the generator emits, the providers that report them and
//! the mix in which they occur.
//!
//! Type ids are the ones of socred's default rulebook catalog. Providers are
//! derived from real places: every city has its courts (`court.weihai-1`),
//! residents' committees, market regulator, tax bureau and so on; railway
//! bureaus and national banks are shared.

use crate::regions::{CITIES, RAILWAY_BUREAUS};

/// Every record type the generator knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Type {
    Profession,
    CompanyRegistration,
    JudgmentDefault,
    JudgmentFulfilled,
    FareEvasion,
    SmokingOnTrain,
    FakeTicket,
    ContractBreach,
    SuedInBreach,
    PrivateLendingBreach,
    IllegalFundraising,
    CounterfeitGoods,
    BankArrears,
    PublicFeeDelay,
    CourtFoundArrears,
    UtilityTheft,
    PublicEquipmentDamage,
    ProfessionalMisconduct,
    FoodSafetyViolation,
    AdministrativePenalty,
    TaxCreditEvaluation,
    TaxGradeD,
    TaxNewTaxpayer,
    Volunteering,
    BloodDonation,
    CharitableDonation,
    Honour,
}

pub const ALL_TYPES: [Type; 27] = [
    Type::Profession,
    Type::CompanyRegistration,
    Type::JudgmentDefault,
    Type::JudgmentFulfilled,
    Type::FareEvasion,
    Type::SmokingOnTrain,
    Type::FakeTicket,
    Type::ContractBreach,
    Type::SuedInBreach,
    Type::PrivateLendingBreach,
    Type::IllegalFundraising,
    Type::CounterfeitGoods,
    Type::BankArrears,
    Type::PublicFeeDelay,
    Type::CourtFoundArrears,
    Type::UtilityTheft,
    Type::PublicEquipmentDamage,
    Type::ProfessionalMisconduct,
    Type::FoodSafetyViolation,
    Type::AdministrativePenalty,
    Type::TaxCreditEvaluation,
    Type::TaxGradeD,
    Type::TaxNewTaxpayer,
    Type::Volunteering,
    Type::BloodDonation,
    Type::CharitableDonation,
    Type::Honour,
];

/// Which subjects a record type is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kinds {
    Person,
    Organisation,
    Both,
}

/// How the conduct weighs: it decides how strongly troubled subjects are
/// favoured and whether the subject may dispute it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Neutral,
    Positive,
    Negative,
    Serious,
}

/// The kind of body that reports a type, and so its provider id's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Court,
    Community,
    HumanResources,
    MarketRegulation,
    Tax,
    PowerGrid,
    Commerce,
    Finance,
    Professional,
    Volunteer,
    BloodCentre,
    Charity,
    Civilisation,
    Railway,
    Bank,
}

impl Type {
    pub fn id(self) -> &'static str {
        match self {
            Type::Profession => "registry.profession",
            Type::CompanyRegistration => "registry.company_registration",
            Type::JudgmentDefault => "judicial.judgment_default",
            Type::JudgmentFulfilled => "judicial.judgment_fulfilled",
            Type::FareEvasion => "transport.fare_evasion",
            Type::SmokingOnTrain => "transport.smoking_on_train",
            Type::FakeTicket => "transport.fake_ticket",
            Type::ContractBreach => "commercial.contract_breach",
            Type::SuedInBreach => "commercial.sued_in_breach",
            Type::PrivateLendingBreach => "commercial.private_lending_breach",
            Type::IllegalFundraising => "commercial.illegal_fundraising",
            Type::CounterfeitGoods => "commercial.counterfeit_goods",
            Type::BankArrears => "commercial.bank_arrears",
            Type::PublicFeeDelay => "social.public_fee_delay",
            Type::CourtFoundArrears => "social.court_found_arrears",
            Type::UtilityTheft => "social.utility_theft",
            Type::PublicEquipmentDamage => "social.public_equipment_damage",
            Type::ProfessionalMisconduct => "professional.misconduct",
            Type::FoodSafetyViolation => "market.food_safety_violation",
            Type::AdministrativePenalty => "market.administrative_penalty",
            Type::TaxCreditEvaluation => "tax.credit_evaluation",
            Type::TaxGradeD => "tax.grade_d_assignment",
            Type::TaxNewTaxpayer => "tax.new_taxpayer",
            Type::Volunteering => "positive.volunteering",
            Type::BloodDonation => "positive.blood_donation",
            Type::CharitableDonation => "positive.charitable_donation",
            Type::Honour => "positive.honour",
        }
    }

    pub fn kinds(self) -> Kinds {
        match self {
            Type::CompanyRegistration
            | Type::FoodSafetyViolation
            | Type::AdministrativePenalty
            | Type::TaxCreditEvaluation
            | Type::TaxGradeD
            | Type::TaxNewTaxpayer => Kinds::Organisation,
            Type::JudgmentDefault
            | Type::JudgmentFulfilled
            | Type::ContractBreach
            | Type::SuedInBreach
            | Type::PrivateLendingBreach
            | Type::IllegalFundraising
            | Type::CounterfeitGoods
            | Type::BankArrears
            | Type::CharitableDonation
            | Type::Honour => Kinds::Both,
            _ => Kinds::Person,
        }
    }

    pub fn tone(self) -> Tone {
        match self {
            Type::Profession
            | Type::CompanyRegistration
            | Type::TaxCreditEvaluation
            | Type::TaxNewTaxpayer
            | Type::JudgmentFulfilled => Tone::Neutral,
            Type::Volunteering | Type::BloodDonation | Type::CharitableDonation | Type::Honour => {
                Tone::Positive
            }
            Type::JudgmentDefault
            | Type::FakeTicket
            | Type::IllegalFundraising
            | Type::FoodSafetyViolation
            | Type::TaxGradeD => Tone::Serious,
            _ => Tone::Negative,
        }
    }

    pub fn family(self) -> Family {
        match self {
            Type::JudgmentDefault
            | Type::JudgmentFulfilled
            | Type::SuedInBreach
            | Type::PrivateLendingBreach
            | Type::CourtFoundArrears => Family::Court,
            Type::PublicFeeDelay | Type::PublicEquipmentDamage => Family::Community,
            Type::Profession => Family::HumanResources,
            Type::CompanyRegistration
            | Type::CounterfeitGoods
            | Type::FoodSafetyViolation
            | Type::AdministrativePenalty => Family::MarketRegulation,
            Type::TaxCreditEvaluation | Type::TaxGradeD | Type::TaxNewTaxpayer => Family::Tax,
            Type::UtilityTheft => Family::PowerGrid,
            Type::ContractBreach => Family::Commerce,
            Type::IllegalFundraising => Family::Finance,
            Type::ProfessionalMisconduct => Family::Professional,
            Type::Volunteering => Family::Volunteer,
            Type::BloodDonation => Family::BloodCentre,
            Type::CharitableDonation => Family::Charity,
            Type::Honour => Family::Civilisation,
            Type::FareEvasion | Type::SmokingOnTrain | Type::FakeTicket => Family::Railway,
            Type::BankArrears => Family::Bank,
        }
    }

    /// The middle part of the provider's record ids (`2026-zhi-00123`).
    pub fn id_tag(self) -> &'static str {
        match self {
            Type::JudgmentDefault | Type::JudgmentFulfilled => "zhi",
            Type::SuedInBreach | Type::PrivateLendingBreach | Type::CourtFoundArrears => "min",
            Type::Profession => "emp",
            Type::CompanyRegistration => "reg",
            Type::CounterfeitGoods | Type::FoodSafetyViolation | Type::AdministrativePenalty => {
                "pen"
            }
            Type::TaxCreditEvaluation | Type::TaxGradeD | Type::TaxNewTaxpayer => "tax",
            Type::FareEvasion | Type::SmokingOnTrain | Type::FakeTicket => "rw",
            Type::BankArrears => "od",
            Type::PublicFeeDelay | Type::PublicEquipmentDamage => "rc",
            Type::UtilityTheft => "pw",
            Type::ContractBreach => "cb",
            Type::IllegalFundraising => "fin",
            Type::ProfessionalMisconduct => "disc",
            Type::Volunteering => "vol",
            Type::BloodDonation => "bld",
            Type::CharitableDonation => "don",
            Type::Honour => "hon",
        }
    }
}

/// One entry of the conduct mix: how often the type occurs (relative
/// weight) and, for types about both kinds, the share of organisations in
/// thousandths.
#[derive(Clone, Copy, Debug)]
pub struct MixEntry {
    pub ty: Type,
    pub weight: u32,
    pub org_per_mille: u32,
}

const fn mix(ty: Type, weight: u32, org_per_mille: u32) -> MixEntry {
    MixEntry {
        ty,
        weight,
        org_per_mille,
    }
}

/// Conduct records (everything but registrations, yearly tax evaluations and
/// follow-ups), in ten-thousandths. Positive conduct and minor commercial and
/// social matters dominate; judgment defaults are about 2.6 %, transport 2 %.
pub const CONDUCT_MIX: &[MixEntry] = &[
    mix(Type::Volunteering, 2900, 0),
    mix(Type::BloodDonation, 800, 0),
    mix(Type::CharitableDonation, 1150, 200),
    mix(Type::Honour, 450, 150),
    mix(Type::ContractBreach, 660, 400),
    mix(Type::SuedInBreach, 300, 400),
    mix(Type::PrivateLendingBreach, 150, 200),
    mix(Type::BankArrears, 1100, 150),
    mix(Type::IllegalFundraising, 10, 600),
    mix(Type::CounterfeitGoods, 60, 700),
    mix(Type::PublicFeeDelay, 1100, 0),
    mix(Type::CourtFoundArrears, 200, 0),
    mix(Type::UtilityTheft, 50, 0),
    mix(Type::PublicEquipmentDamage, 120, 0),
    mix(Type::ProfessionalMisconduct, 40, 0),
    mix(Type::JudgmentDefault, 260, 250),
    mix(Type::FareEvasion, 120, 0),
    mix(Type::SmokingOnTrain, 60, 0),
    mix(Type::FakeTicket, 20, 0),
    mix(Type::AdministrativePenalty, 360, 1000),
    mix(Type::FoodSafetyViolation, 60, 1000),
    mix(Type::TaxGradeD, 30, 1000),
];

/// National banks that report arrears.
pub const BANKS: &[&str] = &["icbc", "ccb", "abc", "boc", "bocom", "cmb", "psbc"];

/// Provider slots of each city, in order: three courts, three residents'
/// committees, then one provider of every other local family.
const CITY_FAMILIES: [(Family, &str, u32); 15] = [
    (Family::Court, "court", 3),
    (Family::Community, "community", 3),
    (Family::HumanResources, "hrss", 1),
    (Family::MarketRegulation, "samr", 1),
    (Family::Tax, "tax", 1),
    (Family::PowerGrid, "grid", 1),
    (Family::Commerce, "commerce", 1),
    (Family::Finance, "finance", 1),
    (Family::Professional, "professional", 1),
    (Family::Volunteer, "volunteer", 1),
    (Family::BloodCentre, "blood", 1),
    (Family::Charity, "charity", 1),
    (Family::Civilisation, "civilisation", 1),
    (Family::Railway, "railway", 0),
    (Family::Bank, "bank", 0),
];

/// Provider slots per city.
const CITY_BLOCK: u32 = 17;

/// Where a family's slots start within a city's block, and how many it has.
fn city_slots(family: Family) -> (u32, u32) {
    let mut start = 0;
    for (candidate, _, count) in CITY_FAMILIES {
        if candidate == family {
            return (start, count);
        }
        start += count;
    }
    (0, 0)
}

/// The index of a provider in [`provider_names`]: `slot` picks one of a
/// family's providers in the city (a court, a committee), or the bureau or
/// bank for national families.
pub fn provider_index(family: Family, city: usize, slot: u32) -> u32 {
    let cities = CITIES.len() as u32;
    match family {
        Family::Railway => cities * CITY_BLOCK + slot,
        Family::Bank => cities * CITY_BLOCK + RAILWAY_BUREAUS.len() as u32 + slot,
        _ => {
            let (start, count) = city_slots(family);
            city as u32 * CITY_BLOCK + start + slot % count.max(1)
        }
    }
}

/// For a provider index, the city and the slot within the city's block
/// (`None` for railway bureaus and banks).
pub fn provider_city(index: u32) -> Option<(usize, u32)> {
    let city = (index / CITY_BLOCK) as usize;
    (city < CITIES.len()).then_some((city, index % CITY_BLOCK))
}

pub fn provider_count() -> usize {
    CITIES.len() * CITY_BLOCK as usize + RAILWAY_BUREAUS.len() + BANKS.len()
}

/// Every provider id, by index, with the family it belongs to.
pub fn provider_names() -> Vec<(String, Family)> {
    let mut names = Vec::with_capacity(provider_count());
    for city in CITIES {
        for (family, prefix, count) in CITY_FAMILIES {
            for n in 1..=count {
                let name = if count > 1 {
                    format!("{prefix}.{}-{n}", city.slug)
                } else {
                    format!("{prefix}.{}", city.slug)
                };
                names.push((name, family));
            }
        }
    }
    for (bureau, _) in RAILWAY_BUREAUS {
        names.push((format!("railway.{bureau}"), Family::Railway));
    }
    for bank in BANKS {
        names.push((format!("bank.{bank}"), Family::Bank));
    }
    names
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn provider_indices_name_the_right_family() {
        let names = provider_names();
        assert_eq!(
            CITY_FAMILIES.iter().map(|family| family.2).sum::<u32>(),
            CITY_BLOCK
        );
        assert_eq!(names.len(), provider_count());
        let unique: HashSet<&str> = names.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(unique.len(), names.len());
        for ty in ALL_TYPES {
            let family = ty.family();
            for (city, slot) in [(0, 0), (CITIES.len() - 1, 2)] {
                let index = provider_index(family, city, slot) as usize;
                assert_eq!(names[index].1, family, "{ty:?}");
            }
        }
        let court = provider_index(Family::Court, 0, 1) as usize;
        assert_eq!(names[court].0, "court.beijing-2");
        assert_eq!(provider_city(court as u32), Some((0, 1)));
        let bank = provider_index(Family::Bank, 0, 0) as usize;
        assert_eq!(names[bank].0, "bank.icbc");
        assert_eq!(provider_city(bank as u32), None);
    }

    #[test]
    fn the_mix_only_lists_conduct() {
        for entry in CONDUCT_MIX {
            assert_ne!(entry.ty.tone(), Tone::Neutral, "{:?}", entry.ty);
            let org_only = entry.ty.kinds() == Kinds::Organisation;
            assert_eq!(org_only, entry.org_per_mille == 1000, "{:?}", entry.ty);
            if entry.ty.kinds() == Kinds::Person {
                assert_eq!(entry.org_per_mille, 0, "{:?}", entry.ty);
            }
        }
        let ids: HashSet<&str> = ALL_TYPES.iter().map(|ty| ty.id()).collect();
        assert_eq!(ids.len(), ALL_TYPES.len());
    }
}
