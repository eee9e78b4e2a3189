//! proptest strategies for random claim sets. Keys are derived from random
//! raw seeds so that every case is reproducible from proptest's seed.

use crate::claims::*;
use nkeys::{KeyPair, KeyPairType};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

pub fn key(kind: KeyPairType) -> impl Strategy<Value = KeyPair> {
    any::<[u8; 32]>().prop_map(move |raw| KeyPair::new_from_raw(kind.clone(), raw).unwrap())
}

pub fn public(kind: KeyPairType) -> impl Strategy<Value = String> {
    key(kind).prop_map(|k| k.public_key())
}

/// Mostly subject-like text, sometimes arbitrary Unicode (control
/// characters, `<>&`, U+2028) to exercise Go's escaping.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_.*>${}()-]{0,12}",
        1 => any::<String>().prop_map(|s| s.chars().take(8).collect()),
        1 => Just("a<b>&c\u{2028}\u{2029}\u{8}\u{c}\u{1}".to_string()),
    ]
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..3)
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), Just(-1i64), any::<i64>()]
}

fn nonzero() -> impl Strategy<Value = i64> {
    any::<i64>().prop_filter("Go presets zero scope limits to -1", |v| *v != 0)
}

pub fn claims_data(sub: String) -> impl Strategy<Value = ClaimsData> {
    (text(), int(), 1..i64::MAX, text(), int()).prop_map(move |(aud, exp, iat, name, nbf)| {
        ClaimsData {
            aud,
            exp,
            jti: String::new(),
            iat,
            iss: String::new(),
            name,
            nbf,
            sub: sub.clone(),
        }
    })
}

fn generic() -> impl Strategy<Value = GenericFields> {
    texts().prop_map(|tags| GenericFields {
        tags,
        ..Default::default()
    })
}

fn permission() -> impl Strategy<Value = Permission> {
    (texts(), texts()).prop_map(|(allow, deny)| Permission { allow, deny })
}

fn permissions() -> impl Strategy<Value = Permissions> {
    (
        permission(),
        permission(),
        option::of(
            (any::<i64>(), any::<i64>()).prop_map(|(max, ttl)| ResponsePermission { max, ttl }),
        ),
    )
        .prop_map(|(publish, subscribe, resp)| Permissions {
            publish,
            subscribe,
            resp,
        })
}

fn limits(nats: BoxedStrategy<i64>) -> impl Strategy<Value = UserPermissionLimits> {
    (
        permissions(),
        texts(),
        vec(
            (text(), text()).prop_map(|(start, end)| TimeRange { start, end }),
            0..2,
        ),
        text(),
        (nats.clone(), nats.clone(), nats),
        any::<(bool, bool)>(),
        texts(),
    )
        .prop_map(
            |(
                permissions,
                src,
                times,
                times_location,
                (subs, data, payload),
                (bearer, proxy),
                types,
            )| {
                UserPermissionLimits {
                    permissions,
                    limits: UserLimits {
                        src,
                        times,
                        times_location,
                    },
                    nats_limits: NatsLimits {
                        subs,
                        data,
                        payload,
                    },
                    bearer_token: bearer,
                    proxy_required: proxy,
                    allowed_connection_types: types,
                }
            },
        )
}

pub fn operator_claims() -> impl Strategy<Value = (KeyPair, OperatorClaims)> {
    key(KeyPairType::Operator).prop_flat_map(|kp| {
        let sub = kp.public_key();
        (
            Just(kp),
            claims_data(sub),
            vec(public(KeyPairType::Operator), 0..3),
            prop_oneof![
                Just(String::new()),
                Just("https://x.example/jwt/v1".to_string())
            ],
            texts(),
            text(),
            text(),
            any::<bool>(),
            generic(),
        )
            .prop_map(
                |(kp, data, signing_keys, asu, osu, sys, asv, strict, generic)| {
                    let nats = Operator {
                        signing_keys,
                        account_server_url: asu,
                        operator_service_urls: osu,
                        system_account: sys,
                        assert_server_version: asv,
                        strict_signing_key_usage: strict,
                        generic,
                    };
                    (kp, Claims { data, nats })
                },
            )
    })
}

fn export_type() -> impl Strategy<Value = Option<ExportType>> {
    option::of(prop_oneof![
        Just(ExportType::Stream),
        Just(ExportType::Service)
    ])
}

fn export() -> impl Strategy<Value = Export> {
    (
        (text(), text(), export_type(), any::<bool>()),
        btree_map(text(), any::<i64>(), 0..2),
        (text(), any::<i64>()),
        option::of(
            (any::<i64>(), text()).prop_map(|(s, results)| ServiceLatency {
                sampling: SamplingRate(s),
                results,
            }),
        ),
        (any::<u64>(), any::<bool>(), any::<bool>(), text(), text()),
    )
        .prop_map(
            |((name, subject, export_type, token_req), revocations, (rt, thr), latency, rest)| {
                Export {
                    name,
                    subject,
                    export_type,
                    token_req,
                    revocations,
                    response_type: rt,
                    response_threshold: thr,
                    latency,
                    account_token_position: rest.0,
                    advertise: rest.1,
                    allow_trace: rest.2,
                    description: rest.3,
                    info_url: rest.4,
                }
            },
        )
}

fn import() -> impl Strategy<Value = Import> {
    (
        (text(), text(), text(), text(), text(), text()),
        export_type(),
        any::<(bool, bool)>(),
    )
        .prop_map(
            |((name, subject, account, token, to, local), import_type, (share, trace))| Import {
                name,
                subject,
                account,
                token,
                to,
                local_subject: local,
                import_type,
                share,
                allow_trace: trace,
            },
        )
}

fn js_limits() -> impl Strategy<Value = JetStreamLimits> {
    (vec(int(), 7), any::<bool>()).prop_map(|(v, req)| JetStreamLimits {
        memory_storage: v[0],
        disk_storage: v[1],
        streams: v[2],
        consumer: v[3],
        max_ack_pending: v[4],
        mem_max_stream_bytes: v[5],
        disk_max_stream_bytes: v[6],
        max_bytes_required: req,
    })
}

fn operator_limits() -> impl Strategy<Value = OperatorLimits> {
    (
        vec(int(), 7),
        any::<(bool, bool)>(),
        // Decoding zeroes untiered JetStream limits when tiers exist (as Go
        // does), so generate one or the other.
        prop_oneof![
            js_limits().prop_map(|j| (j, Default::default())),
            btree_map(text(), js_limits(), 1..3).prop_map(|t| (JetStreamLimits::default(), t)),
        ],
    )
        .prop_map(|(v, (wild, bearer), (jetstream, tiered))| OperatorLimits {
            nats: NatsLimits {
                subs: v[0],
                data: v[1],
                payload: v[2],
            },
            account: AccountLimits {
                imports: v[3],
                exports: v[4],
                wildcard_exports: wild,
                disallow_bearer: bearer,
                conn: v[5],
                leaf_node_conn: v[6],
            },
            jetstream,
            tiered,
        })
}

fn signing_keys() -> impl Strategy<Value = SigningKeys> {
    let scope = (text(), limits(nonzero().boxed()), option::of(text())).prop_map(
        |(role, template, description)| UserScope {
            role,
            template,
            description,
        },
    );
    btree_map(public(KeyPairType::Account), option::of(scope), 0..3).prop_map(SigningKeys)
}

fn mapping() -> impl Strategy<Value = Vec<WeightedMapping>> {
    vec(
        (text(), any::<u8>(), text()).prop_map(|(subject, weight, cluster)| WeightedMapping {
            subject,
            weight,
            cluster,
        }),
        0..3,
    )
}

pub fn account_claims() -> impl Strategy<Value = (KeyPair, AccountClaims)> {
    (key(KeyPairType::Operator), public(KeyPairType::Account)).prop_flat_map(|(kp, sub)| {
        (
            Just(kp),
            claims_data(sub),
            (
                vec(import(), 0..3),
                vec(export(), 0..3),
                operator_limits(),
                signing_keys(),
            ),
            (
                btree_map(text(), any::<i64>(), 0..3),
                permissions(),
                btree_map(text(), mapping(), 0..2),
            ),
            (
                option::of((texts(), texts(), text()).prop_map(
                    |(auth_users, allowed_accounts, xkey)| ExternalAuthorization {
                        auth_users,
                        allowed_accounts,
                        xkey,
                    },
                )),
                option::of(
                    (text(), int()).prop_map(|(destination, sampling)| MsgTrace {
                        destination,
                        sampling,
                    }),
                ),
                (text(), text(), text()),
                generic(),
            ),
        )
            .prop_map(
                |(
                    kp,
                    data,
                    (imports, exports, limits, signing_keys),
                    (revocations, dp, mappings),
                    rest,
                )| {
                    let (authorization, trace, (cluster_traffic, description, info_url), generic) =
                        rest;
                    let nats = Account {
                        imports,
                        exports,
                        limits,
                        signing_keys,
                        revocations,
                        default_permissions: dp,
                        mappings,
                        authorization,
                        trace,
                        cluster_traffic,
                        description,
                        info_url,
                        generic,
                    };
                    (kp, Claims { data, nats })
                },
            )
    })
}

pub fn user_claims() -> impl Strategy<Value = (KeyPair, UserClaims)> {
    (key(KeyPairType::Account), public(KeyPairType::User)).prop_flat_map(|(kp, sub)| {
        (
            Just(kp),
            claims_data(sub),
            limits(int().boxed()),
            text(),
            generic(),
        )
            .prop_map(|(kp, data, permission_limits, issuer_account, generic)| {
                let nats = User {
                    permission_limits,
                    issuer_account,
                    generic,
                };
                (kp, Claims { data, nats })
            })
    })
}

pub fn activation_claims() -> impl Strategy<Value = (KeyPair, ActivationClaims)> {
    (key(KeyPairType::Account), public(KeyPairType::Account)).prop_flat_map(|(kp, sub)| {
        (
            Just(kp),
            claims_data(sub),
            text(),
            export_type(),
            text(),
            generic(),
        )
            .prop_map(|(kp, data, subject, kind, issuer_account, generic)| {
                let nats = Activation {
                    subject,
                    kind,
                    issuer_account,
                    generic,
                };
                (kp, Claims { data, nats })
            })
    })
}
