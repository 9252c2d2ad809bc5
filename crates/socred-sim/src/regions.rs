//! Real administrative divisions used by the synthetic population: county-level
//! codes of GB/T 2260 (the first six characters of a person number and
//! characters 3-8 of a USCC), the prefecture-level cities they belong to and
//! their provinces.
//!
//! Real codes matter: a person number's region is validated by some consumers,
//! and realistic providers (`court.weihai-1`, `railway.jinan`) and case numbers
//! (`(2026) Lu 01 Zhi 123`) are derived from them.

/// A province-level division.
#[derive(Clone, Copy, Debug)]
pub struct Province {
    /// The first two digits of its division codes.
    pub code: u32,
    pub name: &'static str,
    /// The one-character abbreviation that court case numbers carry, in pinyin.
    pub abbr: &'static str,
    /// Slug of the railway bureau that serves it.
    pub railway: &'static str,
}

/// A prefecture-level city (or municipality).
#[derive(Clone, Copy, Debug)]
pub struct City {
    /// The first four digits of its division codes.
    pub code: u32,
    /// Lower-case ASCII, used in provider ids.
    pub slug: &'static str,
    pub name: &'static str,
}

/// A county-level division: a district, a county or a county-level city.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub code: u32,
    pub name: &'static str,
}

pub const PROVINCES: &[Province] = &[
    Province {
        code: 11,
        name: "Beijing",
        abbr: "Jing",
        railway: "beijing",
    },
    Province {
        code: 12,
        name: "Tianjin",
        abbr: "Jin",
        railway: "beijing",
    },
    Province {
        code: 13,
        name: "Hebei",
        abbr: "Ji",
        railway: "beijing",
    },
    Province {
        code: 14,
        name: "Shanxi",
        abbr: "Jin",
        railway: "taiyuan",
    },
    Province {
        code: 15,
        name: "Inner Mongolia",
        abbr: "Meng",
        railway: "hohhot",
    },
    Province {
        code: 21,
        name: "Liaoning",
        abbr: "Liao",
        railway: "shenyang",
    },
    Province {
        code: 22,
        name: "Jilin",
        abbr: "Ji",
        railway: "shenyang",
    },
    Province {
        code: 23,
        name: "Heilongjiang",
        abbr: "Hei",
        railway: "harbin",
    },
    Province {
        code: 31,
        name: "Shanghai",
        abbr: "Hu",
        railway: "shanghai",
    },
    Province {
        code: 32,
        name: "Jiangsu",
        abbr: "Su",
        railway: "shanghai",
    },
    Province {
        code: 33,
        name: "Zhejiang",
        abbr: "Zhe",
        railway: "shanghai",
    },
    Province {
        code: 34,
        name: "Anhui",
        abbr: "Wan",
        railway: "shanghai",
    },
    Province {
        code: 35,
        name: "Fujian",
        abbr: "Min",
        railway: "nanchang",
    },
    Province {
        code: 36,
        name: "Jiangxi",
        abbr: "Gan",
        railway: "nanchang",
    },
    Province {
        code: 37,
        name: "Shandong",
        abbr: "Lu",
        railway: "jinan",
    },
    Province {
        code: 41,
        name: "Henan",
        abbr: "Yu",
        railway: "zhengzhou",
    },
    Province {
        code: 42,
        name: "Hubei",
        abbr: "E",
        railway: "wuhan",
    },
    Province {
        code: 43,
        name: "Hunan",
        abbr: "Xiang",
        railway: "guangzhou",
    },
    Province {
        code: 44,
        name: "Guangdong",
        abbr: "Yue",
        railway: "guangzhou",
    },
    Province {
        code: 45,
        name: "Guangxi",
        abbr: "Gui",
        railway: "nanning",
    },
    Province {
        code: 46,
        name: "Hainan",
        abbr: "Qiong",
        railway: "guangzhou",
    },
    Province {
        code: 50,
        name: "Chongqing",
        abbr: "Yu",
        railway: "chengdu",
    },
    Province {
        code: 51,
        name: "Sichuan",
        abbr: "Chuan",
        railway: "chengdu",
    },
    Province {
        code: 52,
        name: "Guizhou",
        abbr: "Qian",
        railway: "chengdu",
    },
    Province {
        code: 53,
        name: "Yunnan",
        abbr: "Yun",
        railway: "kunming",
    },
    Province {
        code: 54,
        name: "Tibet",
        abbr: "Zang",
        railway: "qinghai-tibet",
    },
    Province {
        code: 61,
        name: "Shaanxi",
        abbr: "Shaan",
        railway: "xian",
    },
    Province {
        code: 62,
        name: "Gansu",
        abbr: "Gan",
        railway: "lanzhou",
    },
    Province {
        code: 63,
        name: "Qinghai",
        abbr: "Qing",
        railway: "qinghai-tibet",
    },
    Province {
        code: 64,
        name: "Ningxia",
        abbr: "Ning",
        railway: "lanzhou",
    },
    Province {
        code: 65,
        name: "Xinjiang",
        abbr: "Xin",
        railway: "urumqi",
    },
];

pub const CITIES: &[City] = &[
    City {
        code: 1101,
        slug: "beijing",
        name: "Beijing",
    },
    City {
        code: 1201,
        slug: "tianjin",
        name: "Tianjin",
    },
    City {
        code: 1301,
        slug: "shijiazhuang",
        name: "Shijiazhuang",
    },
    City {
        code: 1302,
        slug: "tangshan",
        name: "Tangshan",
    },
    City {
        code: 1303,
        slug: "qinhuangdao",
        name: "Qinhuangdao",
    },
    City {
        code: 1304,
        slug: "handan",
        name: "Handan",
    },
    City {
        code: 1306,
        slug: "baoding",
        name: "Baoding",
    },
    City {
        code: 1310,
        slug: "langfang",
        name: "Langfang",
    },
    City {
        code: 1401,
        slug: "taiyuan",
        name: "Taiyuan",
    },
    City {
        code: 1501,
        slug: "hohhot",
        name: "Hohhot",
    },
    City {
        code: 1502,
        slug: "baotou",
        name: "Baotou",
    },
    City {
        code: 2101,
        slug: "shenyang",
        name: "Shenyang",
    },
    City {
        code: 2102,
        slug: "dalian",
        name: "Dalian",
    },
    City {
        code: 2201,
        slug: "changchun",
        name: "Changchun",
    },
    City {
        code: 2202,
        slug: "jilin",
        name: "Jilin",
    },
    City {
        code: 2301,
        slug: "harbin",
        name: "Harbin",
    },
    City {
        code: 3101,
        slug: "shanghai",
        name: "Shanghai",
    },
    City {
        code: 3201,
        slug: "nanjing",
        name: "Nanjing",
    },
    City {
        code: 3202,
        slug: "wuxi",
        name: "Wuxi",
    },
    City {
        code: 3203,
        slug: "xuzhou",
        name: "Xuzhou",
    },
    City {
        code: 3205,
        slug: "suzhou",
        name: "Suzhou",
    },
    City {
        code: 3301,
        slug: "hangzhou",
        name: "Hangzhou",
    },
    City {
        code: 3302,
        slug: "ningbo",
        name: "Ningbo",
    },
    City {
        code: 3303,
        slug: "wenzhou",
        name: "Wenzhou",
    },
    City {
        code: 3307,
        slug: "jinhua",
        name: "Jinhua",
    },
    City {
        code: 3401,
        slug: "hefei",
        name: "Hefei",
    },
    City {
        code: 3402,
        slug: "wuhu",
        name: "Wuhu",
    },
    City {
        code: 3501,
        slug: "fuzhou",
        name: "Fuzhou",
    },
    City {
        code: 3502,
        slug: "xiamen",
        name: "Xiamen",
    },
    City {
        code: 3505,
        slug: "quanzhou",
        name: "Quanzhou",
    },
    City {
        code: 3601,
        slug: "nanchang",
        name: "Nanchang",
    },
    City {
        code: 3602,
        slug: "jingdezhen",
        name: "Jingdezhen",
    },
    City {
        code: 3701,
        slug: "jinan",
        name: "Jinan",
    },
    City {
        code: 3702,
        slug: "qingdao",
        name: "Qingdao",
    },
    City {
        code: 3706,
        slug: "yantai",
        name: "Yantai",
    },
    City {
        code: 3707,
        slug: "weifang",
        name: "Weifang",
    },
    City {
        code: 3710,
        slug: "weihai",
        name: "Weihai",
    },
    City {
        code: 4101,
        slug: "zhengzhou",
        name: "Zhengzhou",
    },
    City {
        code: 4102,
        slug: "kaifeng",
        name: "Kaifeng",
    },
    City {
        code: 4103,
        slug: "luoyang",
        name: "Luoyang",
    },
    City {
        code: 4201,
        slug: "wuhan",
        name: "Wuhan",
    },
    City {
        code: 4205,
        slug: "yichang",
        name: "Yichang",
    },
    City {
        code: 4206,
        slug: "xiangyang",
        name: "Xiangyang",
    },
    City {
        code: 4301,
        slug: "changsha",
        name: "Changsha",
    },
    City {
        code: 4302,
        slug: "zhuzhou",
        name: "Zhuzhou",
    },
    City {
        code: 4303,
        slug: "xiangtan",
        name: "Xiangtan",
    },
    City {
        code: 4401,
        slug: "guangzhou",
        name: "Guangzhou",
    },
    City {
        code: 4403,
        slug: "shenzhen",
        name: "Shenzhen",
    },
    City {
        code: 4404,
        slug: "zhuhai",
        name: "Zhuhai",
    },
    City {
        code: 4405,
        slug: "shantou",
        name: "Shantou",
    },
    City {
        code: 4406,
        slug: "foshan",
        name: "Foshan",
    },
    City {
        code: 4419,
        slug: "dongguan",
        name: "Dongguan",
    },
    City {
        code: 4420,
        slug: "zhongshan",
        name: "Zhongshan",
    },
    City {
        code: 4501,
        slug: "nanning",
        name: "Nanning",
    },
    City {
        code: 4503,
        slug: "guilin",
        name: "Guilin",
    },
    City {
        code: 4601,
        slug: "haikou",
        name: "Haikou",
    },
    City {
        code: 4602,
        slug: "sanya",
        name: "Sanya",
    },
    City {
        code: 5001,
        slug: "chongqing",
        name: "Chongqing",
    },
    City {
        code: 5101,
        slug: "chengdu",
        name: "Chengdu",
    },
    City {
        code: 5107,
        slug: "mianyang",
        name: "Mianyang",
    },
    City {
        code: 5201,
        slug: "guiyang",
        name: "Guiyang",
    },
    City {
        code: 5301,
        slug: "kunming",
        name: "Kunming",
    },
    City {
        code: 5329,
        slug: "dali",
        name: "Dali",
    },
    City {
        code: 5401,
        slug: "lhasa",
        name: "Lhasa",
    },
    City {
        code: 6101,
        slug: "xian",
        name: "Xi'an",
    },
    City {
        code: 6201,
        slug: "lanzhou",
        name: "Lanzhou",
    },
    City {
        code: 6301,
        slug: "xining",
        name: "Xining",
    },
    City {
        code: 6401,
        slug: "yinchuan",
        name: "Yinchuan",
    },
    City {
        code: 6501,
        slug: "urumqi",
        name: "Urumqi",
    },
];

pub const REGIONS: &[Region] = &[
    // Beijing
    Region {
        code: 110101,
        name: "Dongcheng District",
    },
    Region {
        code: 110102,
        name: "Xicheng District",
    },
    Region {
        code: 110105,
        name: "Chaoyang District",
    },
    Region {
        code: 110106,
        name: "Fengtai District",
    },
    Region {
        code: 110107,
        name: "Shijingshan District",
    },
    Region {
        code: 110108,
        name: "Haidian District",
    },
    Region {
        code: 110109,
        name: "Mentougou District",
    },
    Region {
        code: 110111,
        name: "Fangshan District",
    },
    Region {
        code: 110112,
        name: "Tongzhou District",
    },
    Region {
        code: 110113,
        name: "Shunyi District",
    },
    Region {
        code: 110114,
        name: "Changping District",
    },
    Region {
        code: 110115,
        name: "Daxing District",
    },
    Region {
        code: 110116,
        name: "Huairou District",
    },
    Region {
        code: 110117,
        name: "Pinggu District",
    },
    Region {
        code: 110118,
        name: "Miyun District",
    },
    Region {
        code: 110119,
        name: "Yanqing District",
    },
    // Tianjin
    Region {
        code: 120101,
        name: "Heping District",
    },
    Region {
        code: 120102,
        name: "Hedong District",
    },
    Region {
        code: 120103,
        name: "Hexi District",
    },
    Region {
        code: 120104,
        name: "Nankai District",
    },
    Region {
        code: 120105,
        name: "Hebei District",
    },
    Region {
        code: 120106,
        name: "Hongqiao District",
    },
    Region {
        code: 120110,
        name: "Dongli District",
    },
    Region {
        code: 120111,
        name: "Xiqing District",
    },
    Region {
        code: 120112,
        name: "Jinnan District",
    },
    Region {
        code: 120113,
        name: "Beichen District",
    },
    Region {
        code: 120114,
        name: "Wuqing District",
    },
    Region {
        code: 120115,
        name: "Baodi District",
    },
    Region {
        code: 120116,
        name: "Binhai New Area",
    },
    // Hebei
    Region {
        code: 130102,
        name: "Chang'an District",
    },
    Region {
        code: 130104,
        name: "Qiaoxi District",
    },
    Region {
        code: 130105,
        name: "Xinhua District",
    },
    Region {
        code: 130108,
        name: "Yuhua District",
    },
    Region {
        code: 130202,
        name: "Lunan District",
    },
    Region {
        code: 130203,
        name: "Lubei District",
    },
    Region {
        code: 130302,
        name: "Haigang District",
    },
    Region {
        code: 130402,
        name: "Hanshan District",
    },
    Region {
        code: 130602,
        name: "Jingxiu District",
    },
    Region {
        code: 131002,
        name: "Anci District",
    },
    // Shanxi
    Region {
        code: 140105,
        name: "Xiaodian District",
    },
    Region {
        code: 140106,
        name: "Yingze District",
    },
    Region {
        code: 140107,
        name: "Xinghualing District",
    },
    Region {
        code: 140108,
        name: "Jiancaoping District",
    },
    Region {
        code: 140109,
        name: "Wanbailin District",
    },
    Region {
        code: 140110,
        name: "Jinyuan District",
    },
    // Inner Mongolia
    Region {
        code: 150102,
        name: "Xincheng District",
    },
    Region {
        code: 150103,
        name: "Huimin District",
    },
    Region {
        code: 150104,
        name: "Yuquan District",
    },
    Region {
        code: 150105,
        name: "Saihan District",
    },
    Region {
        code: 150202,
        name: "Donghe District",
    },
    Region {
        code: 150203,
        name: "Kundulun District",
    },
    Region {
        code: 150204,
        name: "Qingshan District",
    },
    // Liaoning
    Region {
        code: 210102,
        name: "Heping District",
    },
    Region {
        code: 210103,
        name: "Shenhe District",
    },
    Region {
        code: 210104,
        name: "Dadong District",
    },
    Region {
        code: 210105,
        name: "Huanggu District",
    },
    Region {
        code: 210106,
        name: "Tiexi District",
    },
    Region {
        code: 210202,
        name: "Zhongshan District",
    },
    Region {
        code: 210203,
        name: "Xigang District",
    },
    Region {
        code: 210204,
        name: "Shahekou District",
    },
    Region {
        code: 210211,
        name: "Ganjingzi District",
    },
    // Jilin
    Region {
        code: 220102,
        name: "Nanguan District",
    },
    Region {
        code: 220103,
        name: "Kuancheng District",
    },
    Region {
        code: 220104,
        name: "Chaoyang District",
    },
    Region {
        code: 220105,
        name: "Erdao District",
    },
    Region {
        code: 220106,
        name: "Lvyuan District",
    },
    Region {
        code: 220202,
        name: "Changyi District",
    },
    // Heilongjiang
    Region {
        code: 230102,
        name: "Daoli District",
    },
    Region {
        code: 230103,
        name: "Nangang District",
    },
    Region {
        code: 230104,
        name: "Daowai District",
    },
    Region {
        code: 230108,
        name: "Pingfang District",
    },
    Region {
        code: 230109,
        name: "Songbei District",
    },
    Region {
        code: 230110,
        name: "Xiangfang District",
    },
    // Shanghai
    Region {
        code: 310101,
        name: "Huangpu District",
    },
    Region {
        code: 310104,
        name: "Xuhui District",
    },
    Region {
        code: 310105,
        name: "Changning District",
    },
    Region {
        code: 310106,
        name: "Jing'an District",
    },
    Region {
        code: 310107,
        name: "Putuo District",
    },
    Region {
        code: 310109,
        name: "Hongkou District",
    },
    Region {
        code: 310110,
        name: "Yangpu District",
    },
    Region {
        code: 310112,
        name: "Minhang District",
    },
    Region {
        code: 310113,
        name: "Baoshan District",
    },
    Region {
        code: 310114,
        name: "Jiading District",
    },
    Region {
        code: 310115,
        name: "Pudong New Area",
    },
    Region {
        code: 310116,
        name: "Jinshan District",
    },
    Region {
        code: 310117,
        name: "Songjiang District",
    },
    Region {
        code: 310118,
        name: "Qingpu District",
    },
    Region {
        code: 310120,
        name: "Fengxian District",
    },
    Region {
        code: 310151,
        name: "Chongming District",
    },
    // Jiangsu
    Region {
        code: 320102,
        name: "Xuanwu District",
    },
    Region {
        code: 320104,
        name: "Qinhuai District",
    },
    Region {
        code: 320105,
        name: "Jianye District",
    },
    Region {
        code: 320106,
        name: "Gulou District",
    },
    Region {
        code: 320111,
        name: "Pukou District",
    },
    Region {
        code: 320113,
        name: "Qixia District",
    },
    Region {
        code: 320114,
        name: "Yuhuatai District",
    },
    Region {
        code: 320115,
        name: "Jiangning District",
    },
    Region {
        code: 320213,
        name: "Liangxi District",
    },
    Region {
        code: 320214,
        name: "Xinwu District",
    },
    Region {
        code: 320302,
        name: "Gulou District",
    },
    Region {
        code: 320505,
        name: "Huqiu District",
    },
    Region {
        code: 320506,
        name: "Wuzhong District",
    },
    Region {
        code: 320507,
        name: "Xiangcheng District",
    },
    Region {
        code: 320508,
        name: "Gusu District",
    },
    // Zhejiang
    Region {
        code: 330102,
        name: "Shangcheng District",
    },
    Region {
        code: 330105,
        name: "Gongshu District",
    },
    Region {
        code: 330106,
        name: "Xihu District",
    },
    Region {
        code: 330108,
        name: "Binjiang District",
    },
    Region {
        code: 330109,
        name: "Xiaoshan District",
    },
    Region {
        code: 330110,
        name: "Yuhang District",
    },
    Region {
        code: 330203,
        name: "Haishu District",
    },
    Region {
        code: 330212,
        name: "Yinzhou District",
    },
    Region {
        code: 330302,
        name: "Lucheng District",
    },
    Region {
        code: 330782,
        name: "Yiwu City",
    },
    // Anhui
    Region {
        code: 340102,
        name: "Yaohai District",
    },
    Region {
        code: 340103,
        name: "Luyang District",
    },
    Region {
        code: 340104,
        name: "Shushan District",
    },
    Region {
        code: 340111,
        name: "Baohe District",
    },
    Region {
        code: 340202,
        name: "Jinghu District",
    },
    // Fujian
    Region {
        code: 350102,
        name: "Gulou District",
    },
    Region {
        code: 350103,
        name: "Taijiang District",
    },
    Region {
        code: 350104,
        name: "Cangshan District",
    },
    Region {
        code: 350105,
        name: "Mawei District",
    },
    Region {
        code: 350111,
        name: "Jin'an District",
    },
    Region {
        code: 350203,
        name: "Siming District",
    },
    Region {
        code: 350206,
        name: "Huli District",
    },
    Region {
        code: 350211,
        name: "Jimei District",
    },
    Region {
        code: 350503,
        name: "Fengze District",
    },
    Region {
        code: 350582,
        name: "Jinjiang City",
    },
    // Jiangxi
    Region {
        code: 360102,
        name: "Donghu District",
    },
    Region {
        code: 360103,
        name: "Xihu District",
    },
    Region {
        code: 360104,
        name: "Qingyunpu District",
    },
    Region {
        code: 360111,
        name: "Qingshanhu District",
    },
    Region {
        code: 360202,
        name: "Changjiang District",
    },
    // Shandong
    Region {
        code: 370102,
        name: "Lixia District",
    },
    Region {
        code: 370103,
        name: "Shizhong District",
    },
    Region {
        code: 370104,
        name: "Huaiyin District",
    },
    Region {
        code: 370105,
        name: "Tianqiao District",
    },
    Region {
        code: 370112,
        name: "Licheng District",
    },
    Region {
        code: 370202,
        name: "Shinan District",
    },
    Region {
        code: 370203,
        name: "Shibei District",
    },
    Region {
        code: 370211,
        name: "Huangdao District",
    },
    Region {
        code: 370212,
        name: "Laoshan District",
    },
    Region {
        code: 370602,
        name: "Zhifu District",
    },
    Region {
        code: 370702,
        name: "Weicheng District",
    },
    Region {
        code: 371002,
        name: "Huancui District",
    },
    Region {
        code: 371003,
        name: "Wendeng District",
    },
    Region {
        code: 371082,
        name: "Rongcheng City",
    },
    Region {
        code: 371083,
        name: "Rushan City",
    },
    // Henan
    Region {
        code: 410102,
        name: "Zhongyuan District",
    },
    Region {
        code: 410103,
        name: "Erqi District",
    },
    Region {
        code: 410104,
        name: "Guancheng Hui District",
    },
    Region {
        code: 410105,
        name: "Jinshui District",
    },
    Region {
        code: 410108,
        name: "Huiji District",
    },
    Region {
        code: 410202,
        name: "Longting District",
    },
    Region {
        code: 410302,
        name: "Laocheng District",
    },
    Region {
        code: 410305,
        name: "Jianxi District",
    },
    // Hubei
    Region {
        code: 420102,
        name: "Jiang'an District",
    },
    Region {
        code: 420103,
        name: "Jianghan District",
    },
    Region {
        code: 420104,
        name: "Qiaokou District",
    },
    Region {
        code: 420105,
        name: "Hanyang District",
    },
    Region {
        code: 420106,
        name: "Wuchang District",
    },
    Region {
        code: 420111,
        name: "Hongshan District",
    },
    Region {
        code: 420502,
        name: "Xiling District",
    },
    Region {
        code: 420602,
        name: "Xiangcheng District",
    },
    // Hunan
    Region {
        code: 430102,
        name: "Furong District",
    },
    Region {
        code: 430103,
        name: "Tianxin District",
    },
    Region {
        code: 430104,
        name: "Yuelu District",
    },
    Region {
        code: 430105,
        name: "Kaifu District",
    },
    Region {
        code: 430111,
        name: "Yuhua District",
    },
    Region {
        code: 430202,
        name: "Hetang District",
    },
    Region {
        code: 430302,
        name: "Yuhu District",
    },
    // Guangdong
    Region {
        code: 440103,
        name: "Liwan District",
    },
    Region {
        code: 440104,
        name: "Yuexiu District",
    },
    Region {
        code: 440105,
        name: "Haizhu District",
    },
    Region {
        code: 440106,
        name: "Tianhe District",
    },
    Region {
        code: 440111,
        name: "Baiyun District",
    },
    Region {
        code: 440112,
        name: "Huangpu District",
    },
    Region {
        code: 440113,
        name: "Panyu District",
    },
    Region {
        code: 440303,
        name: "Luohu District",
    },
    Region {
        code: 440304,
        name: "Futian District",
    },
    Region {
        code: 440305,
        name: "Nanshan District",
    },
    Region {
        code: 440306,
        name: "Bao'an District",
    },
    Region {
        code: 440307,
        name: "Longgang District",
    },
    Region {
        code: 440308,
        name: "Yantian District",
    },
    Region {
        code: 440402,
        name: "Xiangzhou District",
    },
    Region {
        code: 440507,
        name: "Longhu District",
    },
    Region {
        code: 440604,
        name: "Chancheng District",
    },
    Region {
        code: 440605,
        name: "Nanhai District",
    },
    Region {
        code: 440606,
        name: "Shunde District",
    },
    Region {
        code: 441900,
        name: "Dongguan City",
    },
    Region {
        code: 442000,
        name: "Zhongshan City",
    },
    // Guangxi
    Region {
        code: 450102,
        name: "Xingning District",
    },
    Region {
        code: 450103,
        name: "Qingxiu District",
    },
    Region {
        code: 450105,
        name: "Jiangnan District",
    },
    Region {
        code: 450302,
        name: "Xiufeng District",
    },
    Region {
        code: 450305,
        name: "Qixing District",
    },
    // Hainan
    Region {
        code: 460105,
        name: "Xiuying District",
    },
    Region {
        code: 460106,
        name: "Longhua District",
    },
    Region {
        code: 460107,
        name: "Qiongshan District",
    },
    Region {
        code: 460108,
        name: "Meilan District",
    },
    Region {
        code: 460202,
        name: "Haitang District",
    },
    Region {
        code: 460203,
        name: "Jiyang District",
    },
    Region {
        code: 460204,
        name: "Tianya District",
    },
    // Chongqing
    Region {
        code: 500101,
        name: "Wanzhou District",
    },
    Region {
        code: 500103,
        name: "Yuzhong District",
    },
    Region {
        code: 500104,
        name: "Dadukou District",
    },
    Region {
        code: 500105,
        name: "Jiangbei District",
    },
    Region {
        code: 500106,
        name: "Shapingba District",
    },
    Region {
        code: 500107,
        name: "Jiulongpo District",
    },
    Region {
        code: 500108,
        name: "Nan'an District",
    },
    Region {
        code: 500112,
        name: "Yubei District",
    },
    // Sichuan
    Region {
        code: 510104,
        name: "Jinjiang District",
    },
    Region {
        code: 510105,
        name: "Qingyang District",
    },
    Region {
        code: 510106,
        name: "Jinniu District",
    },
    Region {
        code: 510107,
        name: "Wuhou District",
    },
    Region {
        code: 510108,
        name: "Chenghua District",
    },
    Region {
        code: 510112,
        name: "Longquanyi District",
    },
    Region {
        code: 510116,
        name: "Shuangliu District",
    },
    Region {
        code: 510703,
        name: "Fucheng District",
    },
    // Guizhou
    Region {
        code: 520102,
        name: "Nanming District",
    },
    Region {
        code: 520103,
        name: "Yunyan District",
    },
    Region {
        code: 520111,
        name: "Huaxi District",
    },
    Region {
        code: 520115,
        name: "Guanshanhu District",
    },
    // Yunnan
    Region {
        code: 530102,
        name: "Wuhua District",
    },
    Region {
        code: 530103,
        name: "Panlong District",
    },
    Region {
        code: 530111,
        name: "Guandu District",
    },
    Region {
        code: 530112,
        name: "Xishan District",
    },
    Region {
        code: 532901,
        name: "Dali City",
    },
    // Tibet
    Region {
        code: 540102,
        name: "Chengguan District",
    },
    // Shaanxi
    Region {
        code: 610102,
        name: "Xincheng District",
    },
    Region {
        code: 610103,
        name: "Beilin District",
    },
    Region {
        code: 610104,
        name: "Lianhu District",
    },
    Region {
        code: 610111,
        name: "Baqiao District",
    },
    Region {
        code: 610112,
        name: "Weiyang District",
    },
    Region {
        code: 610113,
        name: "Yanta District",
    },
    // Gansu
    Region {
        code: 620102,
        name: "Chengguan District",
    },
    Region {
        code: 620103,
        name: "Qilihe District",
    },
    Region {
        code: 620104,
        name: "Xigu District",
    },
    Region {
        code: 620105,
        name: "Anning District",
    },
    // Qinghai
    Region {
        code: 630102,
        name: "Chengdong District",
    },
    Region {
        code: 630103,
        name: "Chengzhong District",
    },
    Region {
        code: 630104,
        name: "Chengxi District",
    },
    Region {
        code: 630105,
        name: "Chengbei District",
    },
    // Ningxia
    Region {
        code: 640104,
        name: "Xingqing District",
    },
    Region {
        code: 640105,
        name: "Xixia District",
    },
    Region {
        code: 640106,
        name: "Jinfeng District",
    },
    // Xinjiang
    Region {
        code: 650102,
        name: "Tianshan District",
    },
    Region {
        code: 650103,
        name: "Saybagh District",
    },
    Region {
        code: 650104,
        name: "Xinshi District",
    },
    Region {
        code: 650105,
        name: "Shuimogou District",
    },
];

/// Railway bureaus and stations they serve, for transport records.
pub const RAILWAY_BUREAUS: &[(&str, &[&str])] = &[
    (
        "beijing",
        &[
            "Beijing South",
            "Beijing West",
            "Tianjin West",
            "Shijiazhuang",
        ],
    ),
    (
        "shanghai",
        &[
            "Shanghai Hongqiao",
            "Nanjing South",
            "Hangzhou East",
            "Hefei South",
            "Suzhou",
        ],
    ),
    (
        "guangzhou",
        &[
            "Guangzhou South",
            "Shenzhen North",
            "Changsha South",
            "Haikou East",
        ],
    ),
    (
        "chengdu",
        &["Chengdu East", "Chongqing North", "Guiyang North"],
    ),
    ("jinan", &["Jinan West", "Qingdao North", "Yantai"]),
    ("wuhan", &["Wuhan", "Hankou", "Yichang East"]),
    ("zhengzhou", &["Zhengzhou East", "Luoyang Longmen"]),
    ("xian", &["Xi'an North", "Xi'an"]),
    (
        "shenyang",
        &["Shenyang North", "Dalian North", "Changchun West"],
    ),
    ("harbin", &["Harbin West", "Harbin"]),
    (
        "nanchang",
        &["Nanchang West", "Fuzhou South", "Xiamen North"],
    ),
    ("nanning", &["Nanning East", "Guilin North"]),
    ("kunming", &["Kunming South", "Dali"]),
    ("lanzhou", &["Lanzhou West", "Yinchuan"]),
    ("urumqi", &["Urumqi", "Urumqi South"]),
    ("hohhot", &["Hohhot East", "Baotou"]),
    ("taiyuan", &["Taiyuan South", "Taiyuan"]),
    ("qinghai-tibet", &["Xining", "Lhasa"]),
];

/// The province a division code belongs to.
pub fn province_of(code: u32) -> Option<&'static Province> {
    PROVINCES
        .iter()
        .find(|province| province.code == code / 10_000)
}

/// The index in [`CITIES`] of the city a division code belongs to.
pub fn city_index_of(code: u32) -> Option<usize> {
    CITIES.iter().position(|city| city.code == code / 100)
}

/// The index in [`RAILWAY_BUREAUS`] of a bureau slug.
pub fn bureau_index(slug: &str) -> Option<usize> {
    RAILWAY_BUREAUS.iter().position(|(name, _)| *name == slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_has_a_city_a_province_and_a_bureau() {
        for region in REGIONS {
            assert!(
                (100_000..=899_999).contains(&region.code),
                "{}",
                region.code
            );
            assert!(
                city_index_of(region.code).is_some(),
                "no city for {}",
                region.code
            );
            let province = province_of(region.code);
            let bureau = province.and_then(|p| bureau_index(p.railway));
            assert!(
                bureau.is_some(),
                "no province or bureau for {}",
                region.code
            );
        }
        for city in CITIES {
            assert!(
                REGIONS.iter().any(|r| r.code / 100 == city.code),
                "city {} unused",
                city.slug
            );
            assert!(
                city.slug.bytes().all(|b| b.is_ascii_lowercase()),
                "{}",
                city.slug
            );
        }
    }

    #[test]
    fn region_codes_are_unique_and_cover_every_province() {
        let mut codes: Vec<u32> = REGIONS.iter().map(|r| r.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), REGIONS.len());
        assert!(REGIONS.len() >= 200);
        for province in PROVINCES {
            assert!(
                REGIONS.iter().any(|r| r.code / 10_000 == province.code),
                "{}",
                province.name
            );
        }
    }
}
