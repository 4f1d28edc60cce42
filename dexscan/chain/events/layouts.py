"""Every event layout of ``reference/onchain/*.md`` as a table of (field, type), in order.

Generated from the reference tables (their newest layout; older versions are prefixes of it, as the
layouts are append-only). :func:`read_fields` reads as many fields as the payload holds, so one
table serves every version, and a field that does not fit ends the read instead of raising. The
fast decoders (one module per program) read only what a trade needs; this table is for showing
and checking every field (:func:`dexscan.chain.events.dispatch.payload_fields`, the tests on real data).
"""

from __future__ import annotations

import struct
from typing import Any

from dexscan.chain.events.codec import b58encode, read_string

FieldType = str
#: (program, event) -> ((field, type), ...); ray_log tables include byte 0, ``log_type``.
LAYOUTS: dict[tuple[str, str], tuple[tuple[str, FieldType], ...]] = {
    ('meteora_dlmm', 'Swap'): (
        ('lb_pair', 'pubkey'), ('from', 'pubkey'), ('start_bin_id', 'i32'), ('end_bin_id', 'i32'),
        ('amount_in', 'u64'), ('amount_out', 'u64'), ('swap_for_y', 'bool'), ('fee', 'u64'), ('protocol_fee', 'u64'),
        ('fee_bps', 'u128'), ('host_fee', 'u64'),
    ),
    ('orca_whirlpool', 'Traded'): (
        ('whirlpool', 'pubkey'), ('a_to_b', 'bool'), ('pre_sqrt_price', 'u128'), ('post_sqrt_price', 'u128'),
        ('input_amount', 'u64'), ('output_amount', 'u64'), ('input_transfer_fee', 'u64'),
        ('output_transfer_fee', 'u64'), ('lp_fee', 'u64'), ('protocol_fee', 'u64'),
    ),
    ('pumpfun', 'TradeEvent'): (
        ('mint', 'pubkey'), ('sol_amount', 'u64'), ('token_amount', 'u64'), ('is_buy', 'bool'), ('user', 'pubkey'),
        ('timestamp', 'i64'), ('virtual_sol_reserves', 'u64'), ('virtual_token_reserves', 'u64'),
        ('real_sol_reserves', 'u64'), ('real_token_reserves', 'u64'), ('fee_recipient', 'pubkey'),
        ('fee_basis_points', 'u64'), ('fee', 'u64'), ('creator', 'pubkey'), ('creator_fee_basis_points', 'u64'),
        ('creator_fee', 'u64'), ('track_volume', 'bool'), ('total_unclaimed_tokens', 'u64'),
        ('total_claimed_tokens', 'u64'), ('current_sol_volume', 'u64'), ('last_update_timestamp', 'i64'),
        ('ix_name', 'string'), ('mayhem_mode', 'bool'), ('cashback_fee_basis_points', 'u64'), ('cashback', 'u64'),
        ('buyback_fee_basis_points', 'u64'), ('buyback_fee', 'u64'), ('shareholders', 'shareholders'),
        ('quote_mint', 'pubkey'), ('quote_amount', 'u64'), ('virtual_quote_reserves', 'u64'),
        ('real_quote_reserves', 'u64'),
    ),
    ('pumpfun', 'CreateEvent'): (
        ('name', 'string'), ('symbol', 'string'), ('uri', 'string'), ('mint', 'pubkey'), ('bonding_curve', 'pubkey'),
        ('user', 'pubkey'), ('creator', 'pubkey'), ('timestamp', 'i64'), ('virtual_token_reserves', 'u64'),
        ('virtual_sol_reserves', 'u64'), ('real_token_reserves', 'u64'), ('token_total_supply', 'u64'),
        ('token_program', 'pubkey'), ('is_mayhem_mode', 'bool'), ('is_cashback_enabled', 'bool'),
        ('quote_mint', 'pubkey'), ('virtual_quote_reserves', 'u64'),
    ),
    ('pumpfun', 'CompleteEvent'): (
        ('user', 'pubkey'), ('mint', 'pubkey'), ('bonding_curve', 'pubkey'), ('timestamp', 'i64'),
        ('quote_mint', 'pubkey'),
    ),
    ('pumpfun', 'CompletePumpAmmMigrationEvent'): (
        ('user', 'pubkey'), ('mint', 'pubkey'), ('mint_amount', 'u64'), ('sol_amount', 'u64'),
        ('pool_migration_fee', 'u64'), ('bonding_curve', 'pubkey'), ('timestamp', 'i64'), ('pool', 'pubkey'),
        ('quote_mint', 'pubkey'),
    ),
    ('pumpswap', 'BuyEvent'): (
        ('timestamp', 'i64'), ('base_amount_out', 'u64'), ('max_quote_amount_in', 'u64'),
        ('user_base_token_reserves', 'u64'), ('user_quote_token_reserves', 'u64'),
        ('pool_base_token_reserves', 'u64'), ('pool_quote_token_reserves', 'u64'), ('quote_amount_in', 'u64'),
        ('lp_fee_basis_points', 'u64'), ('lp_fee', 'u64'), ('protocol_fee_basis_points', 'u64'),
        ('protocol_fee', 'u64'), ('quote_amount_in_with_lp_fee', 'u64'), ('user_quote_amount_in', 'u64'),
        ('pool', 'pubkey'), ('user', 'pubkey'), ('user_base_token_account', 'pubkey'),
        ('user_quote_token_account', 'pubkey'), ('protocol_fee_recipient', 'pubkey'),
        ('protocol_fee_recipient_token_account', 'pubkey'), ('coin_creator', 'pubkey'),
        ('coin_creator_fee_basis_points', 'u64'), ('coin_creator_fee', 'u64'), ('track_volume', 'bool'),
        ('total_unclaimed_tokens', 'u64'), ('total_claimed_tokens', 'u64'), ('current_sol_volume', 'u64'),
        ('last_update_timestamp', 'i64'), ('min_base_amount_out', 'u64'), ('ix_name', 'string'),
        ('cashback_fee_basis_points', 'u64'), ('cashback', 'u64'), ('buyback_fee_basis_points', 'u64'),
        ('buyback_fee', 'u64'),
    ),
    ('pumpswap', 'SellEvent'): (
        ('timestamp', 'i64'), ('base_amount_in', 'u64'), ('min_quote_amount_out', 'u64'),
        ('user_base_token_reserves', 'u64'), ('user_quote_token_reserves', 'u64'),
        ('pool_base_token_reserves', 'u64'), ('pool_quote_token_reserves', 'u64'), ('quote_amount_out', 'u64'),
        ('lp_fee_basis_points', 'u64'), ('lp_fee', 'u64'), ('protocol_fee_basis_points', 'u64'),
        ('protocol_fee', 'u64'), ('quote_amount_out_without_lp_fee', 'u64'), ('user_quote_amount_out', 'u64'),
        ('pool', 'pubkey'), ('user', 'pubkey'), ('user_base_token_account', 'pubkey'),
        ('user_quote_token_account', 'pubkey'), ('protocol_fee_recipient', 'pubkey'),
        ('protocol_fee_recipient_token_account', 'pubkey'), ('coin_creator', 'pubkey'),
        ('coin_creator_fee_basis_points', 'u64'), ('coin_creator_fee', 'u64'), ('cashback_fee_basis_points', 'u64'),
        ('cashback', 'u64'), ('buyback_fee_basis_points', 'u64'), ('buyback_fee', 'u64'),
    ),
    ('pumpswap', 'CreatePoolEvent'): (
        ('timestamp', 'i64'), ('index', 'u16'), ('creator', 'pubkey'), ('base_mint', 'pubkey'),
        ('quote_mint', 'pubkey'), ('base_mint_decimals', 'u8'), ('quote_mint_decimals', 'u8'),
        ('base_amount_in', 'u64'), ('quote_amount_in', 'u64'), ('pool_base_amount', 'u64'),
        ('pool_quote_amount', 'u64'), ('minimum_liquidity', 'u64'), ('initial_liquidity', 'u64'),
        ('lp_token_amount_out', 'u64'), ('pool_bump', 'u8'), ('pool', 'pubkey'), ('lp_mint', 'pubkey'),
        ('user_base_token_account', 'pubkey'), ('user_quote_token_account', 'pubkey'), ('coin_creator', 'pubkey'),
        ('is_mayhem_mode', 'bool'),
    ),
    ('raydium_amm_v4', 'InitLog'): (
        ('log_type', 'u8'), ('time', 'u64'), ('pc_decimals', 'u8'), ('coin_decimals', 'u8'), ('pc_lot_size', 'u64'),
        ('coin_lot_size', 'u64'), ('pc_amount', 'u64'), ('coin_amount', 'u64'), ('market', 'pubkey'),
    ),
    ('raydium_amm_v4', 'DepositLog'): (
        ('log_type', 'u8'), ('max_coin', 'u64'), ('max_pc', 'u64'), ('base', 'u64'), ('pool_coin', 'u64'),
        ('pool_pc', 'u64'), ('pool_lp', 'u64'), ('calc_pnl_x', 'u128'), ('calc_pnl_y', 'u128'),
        ('deduct_coin', 'u64'), ('deduct_pc', 'u64'), ('mint_lp', 'u64'),
    ),
    ('raydium_amm_v4', 'WithdrawLog'): (
        ('log_type', 'u8'), ('withdraw_lp', 'u64'), ('user_lp', 'u64'), ('pool_coin', 'u64'), ('pool_pc', 'u64'),
        ('pool_lp', 'u64'), ('calc_pnl_x', 'u128'), ('calc_pnl_y', 'u128'), ('out_coin', 'u64'), ('out_pc', 'u64'),
    ),
    ('raydium_amm_v4', 'SwapBaseInLog'): (
        ('log_type', 'u8'), ('amount_in', 'u64'), ('minimum_out', 'u64'), ('direction', 'u64'),
        ('user_source', 'u64'), ('pool_coin', 'u64'), ('pool_pc', 'u64'), ('out_amount', 'u64'),
    ),
    ('raydium_amm_v4', 'SwapBaseOutLog'): (
        ('log_type', 'u8'), ('max_in', 'u64'), ('amount_out', 'u64'), ('direction', 'u64'), ('user_source', 'u64'),
        ('pool_coin', 'u64'), ('pool_pc', 'u64'), ('deduct_in', 'u64'),
    ),
    ('raydium_clmm', 'SwapEvent'): (
        ('pool_state', 'pubkey'), ('sender', 'pubkey'), ('token_account_0', 'pubkey'), ('token_account_1', 'pubkey'),
        ('amount_0', 'u64'), ('transfer_fee_0', 'u64'), ('amount_1', 'u64'), ('transfer_fee_1', 'u64'),
        ('zero_for_one', 'bool'), ('sqrt_price_x64', 'u128'), ('liquidity', 'u128'), ('tick', 'i32'),
        ('trade_fee_0', 'u64'), ('trade_fee_1', 'u64'),
    ),
    ('raydium_clmm', 'PoolCreatedEvent'): (
        ('token_mint_0', 'pubkey'), ('token_mint_1', 'pubkey'), ('tick_spacing', 'u16'), ('pool_state', 'pubkey'),
        ('sqrt_price_x64', 'u128'), ('tick', 'i32'), ('token_vault_0', 'pubkey'), ('token_vault_1', 'pubkey'),
    ),
    ('raydium_cpmm', 'SwapEvent'): (
        ('pool_id', 'pubkey'), ('input_vault_before', 'u64'), ('output_vault_before', 'u64'),
        ('input_amount', 'u64'), ('output_amount', 'u64'), ('input_transfer_fee', 'u64'),
        ('output_transfer_fee', 'u64'), ('base_input', 'bool'), ('input_mint', 'pubkey'), ('output_mint', 'pubkey'),
        ('trade_fee', 'u64'), ('creator_fee', 'u64'), ('creator_fee_on_input', 'bool'),
    ),
    ('raydium_cpmm', 'LpChangeEvent'): (
        ('pool_id', 'pubkey'), ('lp_amount_before', 'u64'), ('token_0_vault_before', 'u64'),
        ('token_1_vault_before', 'u64'), ('token_0_amount', 'u64'), ('token_1_amount', 'u64'),
        ('token_0_transfer_fee', 'u64'), ('token_1_transfer_fee', 'u64'), ('change_type', 'u8'),
    ),
}

_FIXED = {
    "u8": struct.Struct("<B"), "u16": struct.Struct("<H"), "u32": struct.Struct("<I"), "u64": struct.Struct("<Q"),
    "i32": struct.Struct("<i"), "i64": struct.Struct("<q"), "bool": struct.Struct("<?"),
}
_SHARE = struct.Struct("<32sH")


def read_fields(payload: bytes, program: str, event: str, start: int = 8) -> dict[str, Any]:
    """The fields of ``event`` found in ``payload`` from ``start`` (8: after an Anchor discriminator;
    0 for ray_log). Reading stops at the first field that does not fit: older layouts are prefixes."""
    layout = LAYOUTS.get((program, event), ())
    out: dict[str, Any] = {}
    off, n = start, len(payload)
    for name, typ in layout:
        fixed = _FIXED.get(typ)
        if fixed is not None:
            if off + fixed.size > n:
                break
            (out[name],) = fixed.unpack_from(payload, off)
            off += fixed.size
        elif typ == "pubkey":
            if off + 32 > n:
                break
            out[name] = b58encode(bytes(payload[off:off + 32]))
            off += 32
        elif typ == "u128":
            if off + 16 > n:
                break
            out[name] = int.from_bytes(payload[off:off + 16], "little")
            off += 16
        elif typ == "string":
            got = read_string(payload, off, limit=4096)
            if got is None:
                break
            out[name], off = got
        elif typ == "shareholders":
            if off + 4 > n:
                break
            count = int.from_bytes(payload[off:off + 4], "little")
            if off + 4 + 34 * count > n:
                break
            off += 4
            holders = []
            for _ in range(count):
                addr, bps = _SHARE.unpack_from(payload, off)
                holders.append({"address": b58encode(addr), "share_bps": bps})
                off += 34
            out[name] = holders
        else:  # an unknown type in the table: stop rather than guess its size
            break
    return out
