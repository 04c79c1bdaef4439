"""The wire contract between registry nodes of the Article 6.2 federation.

Everything that crosses from one Party's registry node to another's is defined
here: identifiers, the signed message envelope, the protocol messages, the
federation directory and the Kafka topic names. It imports no framework beyond
pydantic and cryptography, so every node and every test speaks the same contract.
"""
