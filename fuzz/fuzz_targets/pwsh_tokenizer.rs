//! Fuzzes the PowerShell safe-subset parser (scripts, and script block bodies as PSRP
//! sends them) and the data-file reader: arbitrary text
//! must produce a parse or an error, never a panic, and a successful parse must hold
//! only non-empty command names.
#![no_main]

use hopgate::pwsh::{parse_block, parse_data_file, parse_script, Element, Statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(script) = parse_script(text) {
        for statement in &script.statements {
            if let Statement::Pipeline(elements) = statement {
                assert!(!elements.is_empty());
                for element in elements {
                    if let Element::Command(c) = element {
                        assert!(!c.name.is_empty());
                    }
                }
            }
        }
    }
    let _ = parse_block(text);
    let _ = parse_data_file(text);
});
