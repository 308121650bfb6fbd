import { z } from 'zod';

/**
 * The platform's documented events and the shape of their `data`. Documented participant
 * fields are typed; fields the platform adds later pass through unchanged (loose objects),
 * so a new platform release never breaks publishing.
 */
const money = z.number().finite();
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
  rewardCurrency: z.string().length(3).nullish(),
  createdOn: isoTime.nullish(),
  updatedOn: isoTime.nullish(),
  approval: z.string().nullish(),
  totalReferred: z.number().int().nonnegative().nullish(),
  totalCompletedReferred: z.number().int().nonnegative().nullish(),
  amountPaid: money.nullish(),
  paymentCount: z.number().int().nonnegative().nullish(),
  revenueGenerated: money.nullish(),
  rewardDue: money.nullish(),
  rewardPaid: money.nullish(),
  score: z.number().nullish(),
  impressionCount: z.number().int().nonnegative().nullish(),
});

export const UnlockedReward = z.object({
  id: z.union([z.string().min(1), z.number().int()]),
  amount: money,
  currency: z.string().length(3),
  type: z.string().min(1),
  side: z.enum(['referrer', 'referee']),
});

export const RewardUnlockedData = Participant.extend({ reward: UnlockedReward });

const sampleParticipant = {
  participantId: 384,
  firstName: 'Ada',
  lastName: 'Lovelace',
  email: 'ada@example.com',
  code: 'scG3q9Ez',
  campaignId: 'PMf8BDZ1zb',
  referredByCode: null,
  referralReward: 10,
  referralRewardBalance: 0,
  referralRewardRedeemed: 0,
  refereeReward: 5,
  refereeRewardBalance: 0,
  refereeRewardRedeemed: 0,
  refereeActionCompleted: false,
  refereeActionCompletedLabel: null,
  rewardType: 'cash',
  rewardCurrency: 'USD',
  createdOn: '2025-02-09T03:00:28.002+00:00',
  updatedOn: '2025-02-09T03:00:28.002+00:00',
  approval: 'approved',
  totalReferred: 0,
  totalCompletedReferred: 0,
  amountPaid: 0,
  paymentCount: 0,
  revenueGenerated: 0,
  rewardDue: 0,
  rewardPaid: 0,
  score: 0,
  impressionCount: 0,
};

export const EVENT_CATALOG = {
  referrer_added: {
    description: 'A new referrer/affiliate joined a campaign (signup, API/SDK, or imported by an admin).',
    schema: Participant,
    example: sampleParticipant,
  },
  referee_added: {
    description: 'A new referee (invited friend) joined a campaign.',
    schema: Participant,
    example: { ...sampleParticipant, participantId: 385, firstName: 'Grace', lastName: 'Hopper', email: 'grace@example.com', code: 'Hq7Lm2Xa', referredByCode: 'scG3q9Ez' },
  },
  reward_unlocked: {
    description: 'A participant became eligible for a reward; `reward` says which one and for which side.',
    schema: RewardUnlockedData,
    example: { ...sampleParticipant, totalReferred: 1, totalCompletedReferred: 1, rewardDue: 10, reward: { id: 'rw_9d2Kq', amount: 10, currency: 'USD', type: 'cash', side: 'referrer' } },
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
