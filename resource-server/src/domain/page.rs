//! Pagination of the profile list: `page` >= 1 (default 1), `per_page` 1..=100
//! (default 20). Values out of range are refused, not clamped.

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u32,
    per_page: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageRequestError {
    #[error("page must be a whole number of at least 1.")]
    BadPage,
    #[error("per_page must be a whole number from 1 to {MAX_PER_PAGE}.")]
    BadPerPage,
}

impl PageRequest {
    /// Parses the raw query values; `None` means absent.
    pub fn parse(page: Option<&str>, per_page: Option<&str>) -> Result<Self, PageRequestError> {
        let page = match page {
            None => 1,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or(PageRequestError::BadPage)?,
        };
        let per_page = match per_page {
            None => DEFAULT_PER_PAGE,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=MAX_PER_PAGE).contains(p))
                .ok_or(PageRequestError::BadPerPage)?,
        };
        Ok(Self { page, per_page })
    }

    pub fn page(&self) -> u32 {
        self.page
    }

    pub fn per_page(&self) -> u32 {
        self.per_page
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.per_page)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

/// One page of results and the total count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub request: PageRequest,
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_values_take_the_defaults() {
        assert_eq!(PageRequest::parse(None, None), Ok(PageRequest::default()));
        assert_eq!(PageRequest::default().offset(), 0);
    }

    #[test]
    fn the_offset_follows_page_and_per_page() {
        let request = PageRequest::parse(Some("3"), Some("100"));
        assert_eq!(request.map(|r| r.offset()), Ok(200));
        let last = PageRequest::parse(Some(&u32::MAX.to_string()), Some("100"));
        assert_eq!(last.map(|r| r.offset()), Ok(u64::from(u32::MAX - 1) * 100));
    }

    #[test]
    fn out_of_range_or_non_numeric_values_are_refused() {
        for page in ["0", "-1", "x", "", "1.5", "99999999999"] {
            assert_eq!(
                PageRequest::parse(Some(page), None),
                Err(PageRequestError::BadPage)
            );
        }
        for per_page in ["0", "101", "abc", ""] {
            assert_eq!(
                PageRequest::parse(None, Some(per_page)),
                Err(PageRequestError::BadPerPage)
            );
        }
    }
}
