"""Writes to customers and their wallets, one module per concern:

    issue            issueBulk: issuing CUSTOMER and EARNING promotions
    earn             earn and earn/bulk: earning EARNING and REWARD promotions
    revoke           revokeEarn
    activation       a customer's opt-in to a promotion (customerActivationRequired)
    customers        creating customers
    codes            linking a promo code to a customer (code/link)
    loyalty          issuing loyalty promotions (v2 issue)
    bulk_jobs        the admin's issue and bulk-earn jobs, run in chunks
    bulk_job_inputs  their stored customer lists, deleted once no longer needed
    tallies          per-promotion counts of instances issued and earned (the dashboard's)
    expiry           validTill: re-dating instances, expiring them (expire_promotions)
    customer_import  the import_customers command

The names below are re-exported for callers (`from wallets.services import earned_promotions_issue`),
except the customer import's, which its one caller (import_customers) takes from its module;
the modules import each other directly, never through this package, so no import runs in a circle.
"""

from wallets.services.activation import (
    pending_cart_check_register,
    pending_cart_check_unregister,
    promotion_activation_set,
)
from wallets.services.bulk_job_inputs import (
    PREVIEW_MAX_AGE,
    bulk_job_input_discard,
    bulk_job_input_store,
    bulk_job_inputs_purge,
)
from wallets.services.bulk_jobs import (
    BULK_EARNED_FROM_TYPES,
    BULK_JOB_CHUNK_SIZE,
    MAX_EARN_COUNT,
    MAX_EARN_ENTRIES,
    PREVIEW_UNKNOWN_SHOWN,
    BulkJobPreview,
    bulk_job_check,
    bulk_job_chunk_run,
    bulk_job_chunks,
    bulk_job_create,
    bulk_job_preview,
    bulk_job_retry,
    bulk_job_run_chunk,
    bulk_job_start,
)
from wallets.services.codes import PromoCodeUnknown, promo_code_link
from wallets.services.customers import customer_create
from wallets.services.earn import (
    MAX_FUTURE_EVENT,
    EarnOutcome,
    EarnRequest,
    earned_promotions_earn,
    earned_promotions_earn_check,
)
from wallets.services.expiry import (
    EXPIRE_BATCH,
    REDATE_BATCH,
    earned_promotions_expire,
    earned_promotions_redate,
)
from wallets.services.issue import (
    IssuedInstance,
    IssueOutcome,
    earned_promotions_issue,
    earned_promotions_issue_check,
    promotion_check_running,
)
from wallets.services.loyalty import LoyaltyIssueOutcome, loyalty_promotion_issue
from wallets.services.revoke import RevokeOutcome, RevokeRequest, earned_promotions_revoke
from wallets.services.tallies import promotion_tallies_refresh, promotion_tally_add

__all__ = [
    "BULK_EARNED_FROM_TYPES",
    "BULK_JOB_CHUNK_SIZE",
    "EXPIRE_BATCH",
    "MAX_EARN_COUNT",
    "MAX_EARN_ENTRIES",
    "MAX_FUTURE_EVENT",
    "PREVIEW_MAX_AGE",
    "PREVIEW_UNKNOWN_SHOWN",
    "REDATE_BATCH",
    "BulkJobPreview",
    "EarnOutcome",
    "EarnRequest",
    "IssueOutcome",
    "IssuedInstance",
    "LoyaltyIssueOutcome",
    "PromoCodeUnknown",
    "RevokeOutcome",
    "RevokeRequest",
    "bulk_job_check",
    "bulk_job_chunk_run",
    "bulk_job_chunks",
    "bulk_job_create",
    "bulk_job_input_discard",
    "bulk_job_input_store",
    "bulk_job_inputs_purge",
    "bulk_job_preview",
    "bulk_job_retry",
    "bulk_job_run_chunk",
    "bulk_job_start",
    "customer_create",
    "earned_promotions_earn",
    "earned_promotions_earn_check",
    "earned_promotions_expire",
    "earned_promotions_issue",
    "earned_promotions_issue_check",
    "earned_promotions_redate",
    "earned_promotions_revoke",
    "loyalty_promotion_issue",
    "pending_cart_check_register",
    "pending_cart_check_unregister",
    "promo_code_link",
    "promotion_activation_set",
    "promotion_check_running",
    "promotion_tallies_refresh",
    "promotion_tally_add",
]
