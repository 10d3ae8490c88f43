//! The partitions a group member is assigned, from the bytes DescribeGroups carries: the
//! consumer protocol's Assignment (version: i16; topics: i32 count of { name: i16 length +
//! UTF-8, partitions: i32 count of i32 }; user data, ignored). The bytes come from whatever
//! client joined the group, so they are read with bounds, never trusted.

/// Topics and their partitions; `None` for bytes that are not a consumer Assignment.
pub fn parse(bytes: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    let mut reader = Reader(bytes);
    let _version = reader.i16()?;
    let topics = reader.count(6)?;
    let mut assigned = Vec::with_capacity(topics);
    for _ in 0..topics {
        let length = usize::try_from(reader.i16()?).ok()?;
        let name = String::from_utf8(reader.take(length)?.to_vec()).ok()?;
        let partitions = reader.count(4)?;
        let mut ids = Vec::with_capacity(partitions);
        for _ in 0..partitions {
            ids.push(reader.i32()?);
        }
        assigned.push((name, ids));
    }
    Some(assigned)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An array's count, at most what the rest could hold at `min_item` bytes an item (so a
    /// forged count cannot make us reserve memory).
    fn count(&mut self, min_item: usize) -> Option<usize> {
        let count = usize::try_from(self.i32()?).ok()?;
        (count.saturating_mul(min_item) <= self.0.len()).then_some(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = vec![0, 1];
        out.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            out.extend((name.len() as i16).to_be_bytes());
            out.extend(name.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((-1i32).to_be_bytes());
        out
    }

    #[test]
    fn reads_what_a_consumer_was_assigned() {
        let bytes = assignment(&[("orders", &[0, 2]), ("R2", &[1])]);
        assert_eq!(
            parse(&bytes),
            Some(vec![("orders".into(), vec![0, 2]), ("R2".into(), vec![1])])
        );
    }

    #[test]
    fn forged_or_cut_bytes_are_refused_without_allocating() {
        let bytes = assignment(&[("orders", &[0, 2])]);
        for cut in 0..bytes.len() - 4 {
            assert_eq!(parse(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut huge = vec![0, 1];
        huge.extend(i32::MAX.to_be_bytes());
        assert_eq!(parse(&huge), None);
        assert_eq!(
            parse(&[0, 1, 0xff, 0xff, 0xff, 0xff]),
            None,
            "a negative count"
        );
    }
}
