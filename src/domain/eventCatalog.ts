import { z } from 'zod';

/**
 * The platform's documented events and the shape of their `data`.
 *
 * Rule: the catalog validates what receivers rely on (ids, email, codes) and never rejects a
 * field the platform documents. Every documented field is typed exactly as the platform's own
 * published sample shows it (`approval` a boolean, `score` a string such as "Low", empty strings
 * and nulls normal), and fields the platform adds later pass through unchanged (loose objects).
 * Validation only decides accept or refuse: what receivers get is the `data` exactly as
 * published (same keys, same order), never a re-built copy.
 */
const money = z.number().finite();
const count = z.number().int().nonnegative();
const isoTime = z.string().datetime({ offset: true });

export const Participant = z.looseObject({
  participantId: z.number().int().nonnegative(),
  firstName: z.string().nullish(),
  lastName: z.string().nullish(),
  email: z.string().email(),
  code: z.string().min(1),
  campaignId: z.string().min(1),
  referredByCode: z.string().nullish(),
  referralReward: money.nullish(),
  referralRewardBalance: money.nullish(),
  referralRewardRedeemed: money.nullish(),
  refereeReward: money.nullish(),
  refereeRewardBalance: money.nullish(),
  refereeRewardRedeemed: money.nullish(),
  refereeActionCompleted: z.boolean().nullish(),
  refereeActionCompletedLabel: z.string().nullish(),
  rewardType: z.string().nullish(),
  rewardCurrency: z.string().nullish(),
  createdOn: isoTime.nullish(),
  updatedOn: isoTime.nullish(),
  approval: z.boolean().nullish(),
  totalReferred: count.nullish(),
  totalCompletedReferred: count.nullish(),
  amountPaid: money.nullish(),
  paymentCount: count.nullish(),
  revenueGenerated: money.nullish(),
  rewardDue: money.nullish(),
  rewardPaid: money.nullish(),
  score: z.string().nullish().describe('the participant\'s score label, such as "Low"'),
  impressionCount: count.nullish(),
});

/**
 * The reward a `reward_unlocked` event is about. Its side is said either as `side`
 * (`referrer` | `referee`) or, as many senders in this market do, as `isReferrer`; at least
 * one of them, and they must agree when both are there.
 */
export const UnlockedReward = z
  .looseObject({
    id: z.union([z.string().min(1), z.number().int()]),
    amount: money,
    currency: z.string().min(1),
    type: z.string().min(1),
    side: z.enum(['referrer', 'referee']).optional(),
    isReferrer: z.boolean().optional().describe("true: the referrer's reward; false: the referee's (same as `side`)"),
  })
  .superRefine((r, ctx) => {
    if (r.side === undefined && r.isReferrer === undefined) {
      ctx.addIssue({ code: 'custom', path: ['side'], message: 'say whose reward it is: side ("referrer" | "referee") or isReferrer (true | false)' });
    } else if (r.side !== undefined && r.isReferrer !== undefined && (r.side === 'referrer') !== r.isReferrer) {
      ctx.addIssue({ code: 'custom', path: ['isReferrer'], message: `isReferrer=${r.isReferrer} contradicts side="${r.side}"` });
    }
  })
  // The same rule in JSON Schema, for the OpenAPI document: one of them, or both agreeing.
  .meta({
    anyOf: [
      { required: ['side'], not: { required: ['isReferrer'] } },
      { required: ['isReferrer'], not: { required: ['side'] } },
      { required: ['side', 'isReferrer'], properties: { side: { const: 'referrer' }, isReferrer: { const: true } } },
      { required: ['side', 'isReferrer'], properties: { side: { const: 'referee' }, isReferrer: { const: false } } },
    ],
  });

export const RewardUnlockedData = Participant.extend({ reward: UnlockedReward });

/** The platform's own published `referrer_added` sample (PRODUCT.md), value for value. */
export const PLATFORM_SAMPLE_PARTICIPANT = {
  participantId: 384,
  firstName: '',
  lastName: '',
  email: 'karan.r.shahss92@gmail.com',
  code: 'scG3q9Ez',
  campaignId: 'PMf8BDZ1zb',
  referredByCode: null,
  referralReward: 0,
  referralRewardBalance: 0,
  referralRewardRedeemed: 0,
  refereeReward: 0,
  refereeRewardBalance: 0,
  refereeRewardRedeemed: 0,
  refereeActionCompleted: false,
  refereeActionCompletedLabel: null,
  rewardType: null,
  rewardCurrency: 'USD',
  createdOn: '2025-02-09T03:00:28.002+00:00',
  updatedOn: '2025-02-09T03:00:28.002+00:00',
  approval: true,
  totalReferred: 0,
  totalCompletedReferred: 0,
  amountPaid: 0,
  paymentCount: 0,
  revenueGenerated: 0,
  rewardDue: 0,
  rewardPaid: 0,
  score: 'Low',
  impressionCount: 0,
};

export const EVENT_CATALOG = {
  referrer_added: {
    description: 'A new referrer/affiliate joined a campaign (signup, API/SDK, or imported by an admin).',
    schema: Participant,
    example: PLATFORM_SAMPLE_PARTICIPANT,
  },
  referee_added: {
    description: 'A new referee (invited friend) joined a campaign.',
    schema: Participant,
    example: { ...PLATFORM_SAMPLE_PARTICIPANT, participantId: 385, email: 'grace@example.com', code: 'Hq7Lm2Xa', referredByCode: 'scG3q9Ez' },
  },
  reward_unlocked: {
    description: 'A participant became eligible for a reward; `reward` says which one and whose it is (`side`, or `isReferrer`).',
    schema: RewardUnlockedData,
    example: {
      ...PLATFORM_SAMPLE_PARTICIPANT,
      totalReferred: 1,
      totalCompletedReferred: 1,
      rewardDue: 10,
      reward: { id: 'rw_9d2Kq', amount: 10, currency: 'USD', type: 'cash', isReferrer: true },
    },
  },
} as const;

export type EventType = keyof typeof EVENT_CATALOG;
export const EVENT_TYPES = Object.keys(EVENT_CATALOG) as EventType[];
export const EventTypeName = z.enum(EVENT_TYPES as [EventType, ...EventType[]]);

export function isEventType(value: string): value is EventType {
  return Object.prototype.hasOwnProperty.call(EVENT_CATALOG, value);
}

/** The body receivers get, exactly as PRODUCT.md documents it. Serialised once, signed per attempt. */
export function webhookBody(eventType: EventType, data: unknown, createdAtMs: number): string {
  return JSON.stringify({ eventType, data, createdAt: createdAtMs, updatedAt: createdAtMs });
}

/**
 * JSON Schema (draft 2020-12) of the webhook body an endpoint receives for this type, generated
 * from the catalog's zod schema (`z.toJSONSchema`): what the settings page's event catalog and
 * `GET /v1/event-types` show, so the documentation can never drift from the validation.
 */
export function webhookJsonSchema(eventType: EventType): Record<string, unknown> {
  const { $schema, ...data } = z.toJSONSchema(EVENT_CATALOG[eventType].schema, { io: 'input', unrepresentable: 'any' });
  return {
    $schema,
    title: `${eventType} webhook`,
    description: EVENT_CATALOG[eventType].description,
    type: 'object',
    required: ['eventType', 'data', 'createdAt', 'updatedAt'],
    properties: {
      eventType: { const: eventType },
      data,
      createdAt: { type: 'integer', description: 'when the event was published, in milliseconds since the epoch' },
      updatedAt: { type: 'integer', description: 'the same as createdAt' },
    },
  };
}
