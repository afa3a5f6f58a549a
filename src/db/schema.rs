//! Diesel's view of the tables, written to match `migrations/` (portable types only: ids and
//! JSON as text, UTC timestamps).

diesel::table! {
    organizations (id) {
        id -> Text,
        kind -> Text,
        name -> Text,
        kana -> Nullable<Text>,
        medical_institution_code -> Nullable<Text>,
        municipality_code -> Text,
        postal_code -> Nullable<Text>,
        address -> Nullable<Text>,
        phone -> Nullable<Text>,
        services -> Text,
        active -> Bool,
        search_text -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    practitioners (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        kana -> Text,
        profession -> Text,
        registration_number -> Nullable<Text>,
        phone -> Nullable<Text>,
        email -> Nullable<Text>,
        active -> Bool,
        search_text -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(practitioners -> organizations (organization_id));
diesel::allow_tables_to_appear_in_same_query!(organizations, practitioners);
