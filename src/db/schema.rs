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

diesel::table! {
    patients (id) {
        id -> Text,
        name -> Text,
        kana -> Text,
        birth_date -> Date,
        sex -> Text,
        municipality_code -> Text,
        postal_code -> Nullable<Text>,
        address -> Nullable<Text>,
        phone -> Nullable<Text>,
        care_level -> Nullable<Text>,
        key_person -> Nullable<Text>,
        devices -> Text,
        consent -> Text,
        registered_by -> Text,
        search_text -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        patient_id -> Text,
        managing_organization_id -> Text,
        status -> Text,
        started_on -> Nullable<Date>,
        ended_on -> Nullable<Date>,
        close_reason -> Nullable<Text>,
        notes -> Nullable<Text>,
        team_version -> BigInt,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    case_status_history (id) {
        id -> Text,
        case_id -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        close_reason -> Nullable<Text>,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    care_team_members (id) {
        id -> Text,
        case_id -> Text,
        practitioner_id -> Text,
        role -> Text,
        starts_at -> Timestamp,
        ends_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    absences (id) {
        id -> Text,
        practitioner_id -> Text,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        reason -> Nullable<Text>,
        cancelled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    on_call_shifts (id) {
        id -> Text,
        organization_id -> Text,
        practitioner_id -> Text,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        cancelled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    screening_templates (id) {
        id -> Text,
        owner_organization_id -> Nullable<Text>,
        owner_key -> Text,
        code -> Text,
        template_version -> Integer,
        title_ja -> Text,
        title_en -> Text,
        scoring -> Text,
        threshold -> Nullable<Integer>,
        items -> Text,
        status -> Text,
        published_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    screening_sheets (id) {
        id -> Text,
        hospital_id -> Text,
        base_organization_id -> Text,
        encounter_ref -> Text,
        revision -> Integer,
        supersedes_id -> Nullable<Text>,
        template_id -> Text,
        patient_id -> Nullable<Text>,
        demographics -> Nullable<Text>,
        admitted_at -> Timestamp,
        emergency_admission -> Bool,
        expected_discharge_on -> Nullable<Date>,
        answers -> Text,
        notes -> Nullable<Text>,
        factors -> Text,
        score -> Integer,
        result -> Nullable<Text>,
        status -> Text,
        screening_due_at -> Timestamp,
        week_due_at -> Timestamp,
        submitted_at -> Nullable<Timestamp>,
        interview_held_at -> Nullable<Timestamp>,
        conference_held_at -> Nullable<Timestamp>,
        case_id -> Nullable<Text>,
        decline_reason -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        content_hash -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    beds (id) {
        id -> Text,
        hospital_id -> Text,
        ward -> Text,
        label -> Text,
        kinds -> Text,
        tags -> Text,
        status -> Text,
        alloc_version -> BigInt,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    respite_policies (hospital_id) {
        hospital_id -> Text,
        max_stay_days -> Integer,
        min_notice_days -> Integer,
        admission_weekdays -> Text,
        yearly_limit_days -> Nullable<Integer>,
        version -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    bed_requests (id) {
        id -> Text,
        case_id -> Text,
        patient_id -> Text,
        hospital_id -> Text,
        kind -> Text,
        needs -> Text,
        starts_at -> Timestamp,
        ends_at -> Nullable<Timestamp>,
        reason -> Text,
        status -> Text,
        response_due_at -> Timestamp,
        requested_by -> Text,
        previous_request_id -> Nullable<Text>,
        decline_reason -> Nullable<Text>,
        decline_note -> Nullable<Text>,
        disposition -> Nullable<Text>,
        answered_by -> Nullable<Text>,
        answered_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    bed_allocations (id) {
        id -> Text,
        bed_id -> Text,
        request_id -> Text,
        patient_id -> Text,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        released_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    backup_registrations (id) {
        id -> Text,
        case_id -> Text,
        patient_id -> Text,
        hospital_id -> Text,
        status -> Text,
        consent_obtained_on -> Date,
        summary -> Text,
        requested_by -> Text,
        reject_reason -> Nullable<Text>,
        last_exchange_on -> Nullable<Date>,
        next_exchange_due -> Nullable<Date>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    backup_info_exchanges (id) {
        id -> Text,
        registration_id -> Text,
        exchanged_on -> Date,
        note -> Nullable<Text>,
        recorded_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    event_head (id) {
        id -> Integer,
        last_seq -> BigInt,
    }
}

diesel::table! {
    events (seq) {
        seq -> BigInt,
        id -> Text,
        #[sql_name = "type"]
        kind -> Text,
        resource_type -> Text,
        resource_id -> Text,
        case_id -> Nullable<Text>,
        org_a -> Nullable<Text>,
        org_b -> Nullable<Text>,
        occurred_at -> Timestamp,
        data -> Text,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        organization_id -> Text,
        url -> Text,
                types -> Text,
        sees_org_a -> Bool,
        org_b_types -> Text,
        secret -> Text,
        active -> Bool,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        webhook_id -> Text,
        event_seq -> BigInt,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        leased_by -> Nullable<Text>,
        leased_until -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        delivery_id -> Text,
        attempt -> Integer,
        at -> Timestamp,
        status -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> BigInt,
    }
}

diesel::table! {
    bench_probe (id) {
        id -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(cases -> patients (patient_id));
diesel::joinable!(care_team_members -> cases (case_id));
diesel::joinable!(care_team_members -> practitioners (practitioner_id));
diesel::joinable!(on_call_shifts -> practitioners (practitioner_id));
diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    practitioners,
    patients,
    patient_search_grams,
    patient_org_grams,
    cases,
    case_status_history,
    care_team_members,
    absences,
    on_call_shifts,
    screening_templates,
    screening_sheets,
    beds,
    respite_policies,
    bed_requests,
    bed_allocations,
    backup_registrations,
    backup_info_exchanges,
    event_head,
    events,
    webhooks,
    webhook_deliveries,
    webhook_attempts,
);

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        at -> Timestamp,
        request_id -> Text,
        actor_sub -> Text,
        actor_org -> Text,
        actor_roles -> Text,
        client_id -> Nullable<Text>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Text>,
        patient_id -> Nullable<Text>,
        outcome -> Text,
        status -> Integer,
        purpose -> Text,
        reason -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_chain (id) {
        id -> Integer,
        last_seq -> BigInt,
        last_hash -> Text,
    }
}

diesel::table! {
    audit_patient_keys (patient_id, seq) {
        patient_id -> Text,
        seq -> BigInt,
    }
}

diesel::table! {
    audit_actor_keys (actor_sub, seq) {
        actor_sub -> Text,
        seq -> BigInt,
    }
}

diesel::table! {
    audit_keys_head (id) {
        id -> Integer,
        keyed_seq -> BigInt,
    }
}

diesel::joinable!(audit_patient_keys -> audit_events (seq));
diesel::joinable!(audit_actor_keys -> audit_events (seq));
diesel::allow_tables_to_appear_in_same_query!(audit_events, audit_patient_keys, audit_actor_keys);
diesel::allow_tables_to_appear_in_same_query!(audit_keys_head, audit_chain);

diesel::table! {
    api_clients (id) {
        id -> Text,
        name -> Text,
        organization_id -> Text,
        roles -> Text,
        secret_hash -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    idempotency_keys (caller, idem_key) {
        caller -> Text,
        idem_key -> Text,
        request_hash -> Text,
        state -> Text,
        status -> Nullable<Integer>,
        headers -> Nullable<Text>,
        body -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_pending (pending_id) {
        pending_id -> BigInt,
        id -> Text,
        at -> Timestamp,
        request_id -> Text,
        actor_sub -> Text,
        actor_org -> Text,
        actor_roles -> Text,
        client_id -> Nullable<Text>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Text>,
        patient_id -> Nullable<Text>,
        outcome -> Text,
        status -> Integer,
        purpose -> Text,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    event_outbox (pending_id) {
        pending_id -> BigInt,
        id -> Text,
        #[sql_name = "type"]
        kind -> Text,
        resource_type -> Text,
        resource_id -> Text,
        case_id -> Nullable<Text>,
        org_a -> Nullable<Text>,
        org_b -> Nullable<Text>,
        occurred_at -> Timestamp,
        data -> Text,
    }
}

diesel::table! {
    patient_search_grams (gram, patient_id) {
        gram -> Text,
        patient_id -> Text,
    }
}

diesel::table! {
    patient_org_grams (organization_id, gram, patient_id) {
        organization_id -> Text,
        gram -> Text,
        patient_id -> Text,
    }
}
