"""The state machines as data: the tables say exactly what the contract says."""

from central.orders.states import (
    OrderStatus,
    TransferStatus,
    is_terminal_order,
    is_terminal_transfer,
    order_sources,
    transfer_sources,
)

OS = OrderStatus
TS = TransferStatus


def test_order_sources_follow_the_contract() -> None:
    assert order_sources(OS.CONFIRMED) == [OS.PENDING]
    assert order_sources(OS.FAILED) == [OS.PENDING]
    assert order_sources(OS.REFUNDED) == [OS.CONFIRMED]
    assert order_sources(OS.PENDING) == []


def test_only_compensation_fails_a_confirmed_order() -> None:
    assert sorted(order_sources(OS.FAILED, compensation=True)) == sorted([OS.PENDING, OS.CONFIRMED])
    assert order_sources(OS.CONFIRMED, compensation=True) == [OS.PENDING]


def test_transfer_sources_follow_the_contract() -> None:
    assert transfer_sources(TS.PENDING_OTP) == [TS.INITIATED]
    assert sorted(transfer_sources(TS.FAILED)) == sorted([TS.INITIATED, TS.PENDING_OTP])
    assert sorted(transfer_sources(TS.COMPLETED)) == sorted([TS.PENDING_OTP, TS.DISPUTED])
    assert transfer_sources(TS.DISPUTED) == [TS.COMPLETED]
    assert transfer_sources(TS.REVERSED) == [TS.DISPUTED]
    assert transfer_sources(TS.INITIATED) == []


def test_terminal_states() -> None:
    assert [s for s in OS if is_terminal_order(s)] == [OS.FAILED, OS.REFUNDED]
    assert sorted(s for s in TS if is_terminal_transfer(s)) == sorted([TS.FAILED, TS.REVERSED])
