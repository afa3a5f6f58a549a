//! Typed identifiers: a practitioner id can never be passed where an organization id is meant.
//! Ids are UUID v7 (time-ordered) made by the server, stored as lowercase hyphenated text, so
//! their text order is their creation order (keyset pagination relies on it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// An organization of the regional directory.
    OrganizationId
);
typed_id!(
    /// A practitioner of the regional directory.
    PractitionerId
);
typed_id!(
    /// A patient of home care.
    PatientId
);
typed_id!(
    /// A case: one period of home care for one patient (≈ FHIR EpisodeOfCare).
    CaseId
);
typed_id!(
    /// One membership of a care team (a role for a period).
    MemberId
);
typed_id!(
    /// A practitioner's absence.
    AbsenceId
);
typed_id!(
    /// A shift of an organization's on-call roster.
    ShiftId
);
typed_id!(
    /// A version of a discharge screening template (≈ FHIR Questionnaire).
    TemplateId
);
typed_id!(
    /// A discharge screening sheet (≈ FHIR QuestionnaireResponse); each revision has its own id.
    ScreeningId
);
typed_id!(
    /// A backup bed of a hospital (≈ FHIR Location, `bd`).
    BedId
);
typed_id!(
    /// A request for a backup bed (≈ FHIR ServiceRequest + Task).
    BedRequestId
);
typed_id!(
    /// A patient's pre-registration with a backup hospital.
    RegistrationId
);
