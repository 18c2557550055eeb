pub mod comtrade;
