import XCTest
import SPIODigest

/// SHA-256 against Python's hashlib (values computed with hashlib.sha256(...).hexdigest()).
final class SHA256Tests: XCTestCase {
    func testKnownDigests() {
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            SHA256.hex(String(repeating: "a", count: 1000)),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        // 55 and 56 bytes straddle the padding boundary.
        XCTAssertEqual(
            SHA256.hex(String(repeating: "b", count: 55)),
            "eb2c86e932179f4ba13fe8715a26124b77d6bad290b9b4c1cc140cf633300c19")
        XCTAssertEqual(
            SHA256.hex(String(repeating: "b", count: 56)),
            "a5fc6e203a4c2b657d0d153885932414b2ffc6a93f0f8bf8b3183315e5a7212c")
    }
}
